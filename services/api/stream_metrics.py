"""The live streams on /metrics: how many are open and what their one poller costs the database
(tests and bench/streams.py read these to show that cost does not grow with the streams)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.api.streams.broker import Broker


class StreamCollector(Collector):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        b = self.broker
        yield GaugeMetricFamily(
            "queue_worker_stream_subscribers",
            "Open event streams (GET /api/workflows/events, /api/workflows/{id}/events).",
            value=b.subscriber_count(),
        )
        yield GaugeMetricFamily(
            "queue_worker_stream_poller_running",
            "1 while this process's stream poller runs (only while someone listens).",
            value=1 if b.running else 0,
        )
        yield CounterMetricFamily(
            "queue_worker_stream_polls",
            "Polls of the database by the stream poller, all streams together.",
            value=b.ticks,
        )
        yield CounterMetricFamily(
            "queue_worker_stream_poll_statements",
            "SQL statements the stream poller sent, all streams together.",
            value=b.queries.statements,
        )
