"""Prometheus metrics of one worker process, served on its /metrics (docs/metrics.md lists them).

Gauges describe this process (configured concurrency, workflows running now); counters and
histograms come from @instrumented workflows (services/worker/instrumentation.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, Info, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.dbos_internals import dbos_instance
from services.common.settings import Settings
from services.common.sql import WorkflowQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES
from services.worker import instrumentation
from services.worker.listener import WakeListener
from services.worker.wake import SLOT, WORK, Wakeups

# No `_created` series: they double the series count and no dashboard or rule reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


def active_workflows(queue: str | None = None) -> int:
    """Workflows executing in this process now (0 before launch and after shutdown)."""
    instance = dbos_instance()
    if instance is None:
        return 0
    active = instance._active_workflows_set
    return active.count_for_queue(queue) if queue else len(active.activeList())


class WorkerMetrics:
    def __init__(
        self, settings: Settings, app_version: str, queries: WorkflowQueries | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        Info(
            "queue_worker_worker",
            "This worker's executor id and application version.",
            registry=self.registry,
        ).info({"executor_id": settings.executor_id, "app_version": app_version})
        concurrency = Gauge(
            "queue_worker_worker_concurrency",
            "Workflows this worker may run at once, per queue (worker_concurrency).",
            ["queue"],
            registry=self.registry,
        )
        in_flight = Gauge(
            "queue_worker_worker_in_flight",
            "Workflows from this queue executing in this worker process now.",
            ["queue"],
            registry=self.registry,
        )
        for queue in KNOWN_QUEUES:
            concurrency.labels(queue=queue).set(settings.worker_concurrency)
            in_flight.labels(queue=queue).set_function(functools.partial(active_workflows, queue))
        Gauge(
            "queue_worker_worker_workflows_active",
            "Workflows of any kind (queued or not) executing in this worker process now.",
            registry=self.registry,
        ).set_function(active_workflows)
        self.workflows = instrumentation.register_workflow_metrics(self.registry)
        if queries is not None:
            instrumentation.install(self.workflows, queries)


class _WakeCollector(Collector):
    """Read at scrape time from the listener and the bells (no locks held on the hot path)."""

    def __init__(self, wakeups: Wakeups, listener: WakeListener) -> None:
        self._wakeups = wakeups
        self._listener = listener

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily(
            "queue_worker_wake_listener_up",
            "1 while this worker's LISTEN connection for enqueue notifications is open.",
        )
        up.add_metric([], 1.0 if self._listener.connected else 0.0)
        yield up
        connects = CounterMetricFamily(
            "queue_worker_wake_listener_connects",
            "Times the LISTEN connection was opened (1 + reconnects).",
        )
        connects.add_metric([], float(self._listener.connects))
        yield connects
        rings = CounterMetricFamily(
            "queue_worker_wakeups",
            "Wake-ups of the queue threads: notify (enqueue trigger), slot (a workflow finished).",
            labels=["reason"],
        )
        rings.add_metric(["notify"], float(self._wakeups.rings[WORK]))
        rings.add_metric(["slot"], float(self._wakeups.rings[SLOT]))
        yield rings


def register_wake_metrics(
    registry: CollectorRegistry, wakeups: Wakeups, listener: WakeListener
) -> None:
    registry.register(_WakeCollector(wakeups, listener))
