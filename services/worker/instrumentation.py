"""Per-workflow metrics: `@instrumented` under `@DBOS.workflow()` counts and times each execution.

    @DBOS.workflow(name="my-workflow")
    @instrumented
    def my_workflow(...): ...

Semantics (docs/metrics.md has the long form):
- A completion is counted when the workflow function returns or raises *in this process*. A worker
  killed mid-run counts nothing; the worker that recovers the workflow counts it once when its
  re-execution returns. An execution that loses ownership of its workflow
  (DBOSWorkflowConflictIDError) counts CANCELLED if the workflow was cancelled, else nothing: a
  recovery or resume moved it to another execution, which counts it.
- Duration is measured from the function's entry to its exit in this process.
- Queue wait (enqueue to dequeue) is observed on the first dispatch only (recovery_attempts <= 1):
  a recovered or re-dispatched workflow would otherwise report its whole life as queue wait.
- Reading the row is a plain SQL read, not DBOS.get_workflow_status(): that one is recorded as a
  step, which would add a row per workflow and shift the step numbering of existing workflows.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from dbos import DBOS
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from services.common.dbos_internals import DBOSWorkflowCancelledError, DBOSWorkflowConflictIDError
from services.common.sql import WorkflowTiming

log = logging.getLogger(__name__)

# No `_created` series: they double the series count and no dashboard or rule reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

P = ParamSpec("P")
R = TypeVar("R")

# Label value for a workflow started directly rather than through a queue.
NO_QUEUE = "none"

# Seconds. Queue wait spans milliseconds (idle workers) to hours (a backlog); durations likewise.
_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class WorkflowMetrics:
    started: Counter
    completed: Counter
    duration: Histogram
    queue_wait: Histogram


def register_workflow_metrics(registry: CollectorRegistry) -> WorkflowMetrics:
    return WorkflowMetrics(
        started=Counter(
            "queue_worker_workflows_started_total",
            "Workflow executions started in this worker (recoveries included).",
            ["workflow", "queue"],
            registry=registry,
        ),
        completed=Counter(
            "queue_worker_workflows_completed_total",
            "Workflow executions that returned (SUCCESS) or raised (ERROR, CANCELLED) here.",
            ["workflow", "queue", "status"],
            registry=registry,
        ),
        duration=Histogram(
            "queue_worker_workflow_duration_seconds",
            "Time from a workflow function's entry to its return or exception in this worker.",
            ["workflow", "queue", "status"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        ),
        queue_wait=Histogram(
            "queue_worker_workflow_queue_wait_seconds",
            "Time from enqueue to first dequeue (first dispatch only; recoveries excluded).",
            ["workflow", "queue"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        ),
    )


class TimingSource(Protocol):
    """Reads a workflow's row (services.common.sql.WorkflowQueries in the worker)."""

    def workflow_timing(self, workflow_id: str) -> WorkflowTiming | None: ...


class _Sink:
    """Where @instrumented reports: set once by the worker at start-up (nothing before that)."""

    metrics: WorkflowMetrics | None = None
    queries: TimingSource | None = None


def install(metrics: WorkflowMetrics, queries: TimingSource) -> None:
    _Sink.metrics = metrics
    _Sink.queries = queries


def uninstall() -> None:
    _Sink.metrics = None
    _Sink.queries = None


def _timing(workflow_id: str | None) -> WorkflowTiming | None:
    if _Sink.queries is None or workflow_id is None:
        return None
    try:
        return _Sink.queries.workflow_timing(workflow_id)
    except Exception as exc:  # metrics must never fail a workflow
        log.warning("workflow timing read failed", extra={"error": type(exc).__name__})
        return None


@contextmanager
def _observe(
    default_name: str, workflow_id: str | None, timing: WorkflowTiming | None
) -> Iterator[None]:
    metrics = _Sink.metrics
    if metrics is None:
        yield
        return
    name = timing.name if timing else default_name
    queue = (timing.queue_name if timing else None) or NO_QUEUE
    entered = time.monotonic()
    metrics.started.labels(name, queue).inc()
    if timing and timing.started_at_ms is not None and timing.recovery_attempts <= 1:
        wait = max(0.0, (timing.started_at_ms - timing.created_at_ms) / 1000.0)
        metrics.queue_wait.labels(name, queue).observe(wait)

    def done(status: str) -> None:
        metrics.completed.labels(name, queue, status).inc()
        metrics.duration.labels(name, queue, status).observe(time.monotonic() - entered)

    try:
        yield
    except DBOSWorkflowConflictIDError:
        # Ownership moved: a cancel (count it here, nobody else will) or a recovery/resume (the
        # new owner counts it when it finishes).
        now = _timing(workflow_id)
        if now is not None and now.status == "CANCELLED":
            done("CANCELLED")
        raise
    except DBOSWorkflowCancelledError:
        done("CANCELLED")
        raise
    except BaseException:
        done("ERROR")
        raise
    done("SUCCESS")


def instrumented(func: Callable[P, R]) -> Callable[P, R]:
    """Count and time each execution of a workflow function (sync or async). Apply it *under*
    @DBOS.workflow(), so it wraps the body DBOS runs on dequeue and on recovery."""
    default_name = getattr(func, "__qualname__", "workflow")

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            workflow_id = DBOS.workflow_id
            timing = await asyncio.to_thread(_timing, workflow_id)
            with _observe(default_name, workflow_id, timing):
                return await func(*args, **kwargs)

        return cast(Callable[P, R], async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        workflow_id = DBOS.workflow_id
        with _observe(default_name, workflow_id, _timing(workflow_id)):
            return func(*args, **kwargs)

    return wrapper
