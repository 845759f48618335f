"""Prometheus metrics of one worker process, served on its /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Info

from services.common.names import KNOWN_QUEUES
from services.common.settings import Settings


def _active_workflow_count() -> int:
    """Workflows executing in this process right now (0 before launch and after shutdown)."""
    from dbos._dbos import _dbos_global_instance

    # Private to dbos, which is pinned exactly; tests/integration cover this against the pin.
    if _dbos_global_instance is None:
        return 0
    return len(_dbos_global_instance._active_workflows_set.activeList())


class WorkerMetrics:
    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        Info(
            "queue_worker_worker",
            "This worker's executor id and application version.",
            registry=self.registry,
        ).info({"executor_id": settings.executor_id, "app_version": settings.app_version})
        concurrency = Gauge(
            "queue_worker_worker_concurrency",
            "Workflows this worker may run at once, per queue (worker_concurrency).",
            ["queue"],
            registry=self.registry,
        )
        for queue in KNOWN_QUEUES:
            concurrency.labels(queue=queue).set(settings.worker_concurrency)
        in_flight = Gauge(
            "queue_worker_worker_in_flight",
            "Workflows executing in this worker process now.",
            registry=self.registry,
        )
        in_flight.set_function(_active_workflow_count)
