"""Queue gauges for the API's /metrics, computed in SQL and cached briefly.

The cache means frequent scrapes from many API replicas cost the database at most one grouped,
index-only count per replica per METRICS_CACHE_SECONDS. Every known or registered queue is
exported with zeros included, so a series never vanishes while its queue is idle.

Every API replica exports the same values: aggregate them with max, never sum (the recording rule
queue_worker:queue_backlog:max in charts/queue-worker/files/prometheus/ does; it feeds the
autoscaler, and counts only the runnable part of the backlog: queue_worker_queue_runnable, not
_depth).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.queue_holds_sql import HOLD_REASONS
from services.common.sql import QueueStats, WorkflowQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES

log = logging.getLogger("queue_worker.api")


class QueueStatsCache:
    def __init__(self, queries: WorkflowQueries, ttl_sec: float) -> None:
        self._queries = queries
        self._ttl = ttl_sec
        self._lock = threading.Lock()
        self._stats: list[QueueStats] = []
        self._fetched_at = -1e18
        self.last_ok = False
        # Wall time of the last query, successful or not (seconds).
        self.last_duration_sec = 0.0
        # time.time() of the last successful query; 0 before the first.
        self.last_success_unix = 0.0

    def get(self) -> list[QueueStats]:
        """Fresh or cached stats. On a database error: the last good values, with last_ok False."""
        with self._lock:
            if time.monotonic() - self._fetched_at < self._ttl:
                return self._stats
            started = time.perf_counter()
            try:
                self._stats = self._queries.queue_stats(KNOWN_QUEUES)
                self.last_ok = True
                self.last_success_unix = time.time()
            except Exception as exc:
                log.warning("queue stats query failed", extra={"error": type(exc).__name__})
                self.last_ok = False
            self.last_duration_sec = time.perf_counter() - started
            self._fetched_at = time.monotonic()
            return self._stats


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class QueueCollector(Collector):
    def __init__(self, cache: QueueStatsCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._cache.get()
        now_ms = int(time.time() * 1000)
        depth = _gauge(
            "queue_worker_queue_depth", "Workflows waiting in the queue (ENQUEUED).", ["queue"]
        )
        in_flight = _gauge(
            "queue_worker_queue_in_flight", "Workflows dequeued and running (PENDING).", ["queue"]
        )
        oldest = _gauge(
            "queue_worker_queue_oldest_age_seconds",
            "Age of the oldest ENQUEUED workflow in the queue; 0 when empty.",
            ["queue"],
        )
        runnable = _gauge(
            "queue_worker_queue_runnable",
            "ENQUEUED workflows a worker could start now: the backlog less what a per-key "
            "concurrency, a queue-wide concurrency or a rate limit holds back. The autoscaling "
            "signal counts these.",
            ["queue"],
        )
        held = _gauge(
            "queue_worker_queue_held",
            "Workflows waiting that a limit holds back, by reason (partition_concurrency, "
            "no_partition_key, concurrency, rate_limit: part of the ENQUEUED backlog; delayed: "
            "DELAYED workflows not yet due, not part of it).",
            ["queue", "reason"],
        )
        concurrency = _gauge(
            "queue_worker_queue_worker_concurrency",
            "Per-worker concurrency the queue was registered with (registered queues only).",
            ["queue"],
        )
        names = {s.name for s in stats}
        for s in stats:
            depth.add_metric([s.name], s.enqueued)
            in_flight.add_metric([s.name], s.pending)
            oldest.add_metric([s.name], s.oldest_enqueued_age_sec(now_ms))
            runnable.add_metric([s.name], s.runnable)
            for reason in HOLD_REASONS:
                held.add_metric([s.name, reason], s.held.get(reason, 0))
            if s.worker_concurrency is not None:
                concurrency.add_metric([s.name], s.worker_concurrency)
        for name in KNOWN_QUEUES:
            if name not in names:  # no successful query yet: still export the series
                depth.add_metric([name], 0)
                in_flight.add_metric([name], 0)
                oldest.add_metric([name], 0)
                runnable.add_metric([name], 0)
                for reason in HOLD_REASONS:
                    held.add_metric([name, reason], 0)
        up = _gauge(
            "queue_worker_queue_stats_up",
            "1 if the last queue statistics query succeeded, 0 if the values are stale.",
        )
        up.add_metric([], 1 if self._cache.last_ok else 0)
        duration = _gauge(
            "queue_worker_queue_stats_query_duration_seconds",
            "Wall time of the last queue statistics query (cached scrapes do not query).",
        )
        duration.add_metric([], self._cache.last_duration_sec)
        last_success = _gauge(
            "queue_worker_queue_stats_last_success_timestamp_seconds",
            "Unix time of the last successful queue statistics query; 0 before the first.",
        )
        last_success.add_metric([], self._cache.last_success_unix)
        yield from (
            depth,
            in_flight,
            oldest,
            runnable,
            held,
            concurrency,
            up,
            duration,
            last_success,
        )
