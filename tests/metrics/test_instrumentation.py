"""@instrumented in-process, without DBOS: what it counts for success, failure, cancellation and a
lost ownership, and that nothing is counted before the worker installs its metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from services.common.dbos_internals import DBOSWorkflowCancelledError, DBOSWorkflowConflictIDError
from services.common.sql import WorkflowTiming
from services.worker import instrumentation
from services.worker.instrumentation import NO_QUEUE, instrumented, register_workflow_metrics
from tests.metrics.scrape import parse, total, value


class FakeQueries:
    def __init__(self, timing: WorkflowTiming | None) -> None:
        self.timing = timing
        self.calls = 0

    def workflow_timing(self, workflow_id: str) -> WorkflowTiming | None:
        self.calls += 1
        return self.timing


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    reg = CollectorRegistry()
    instrumentation.install(register_workflow_metrics(reg), FakeQueries(None))
    yield reg
    instrumentation.uninstall()


def test_success_and_error_are_counted_and_timed(registry: CollectorRegistry) -> None:
    @instrumented
    def ok(x: int) -> int:
        return x * 2

    @instrumented
    def boom() -> None:
        raise ValueError("no")

    assert ok(21) == 42
    with pytest.raises(ValueError, match="no"):
        boom()
    s = parse(generate_latest(registry).decode())
    labels = {"queue": NO_QUEUE}
    assert total(s, "queue_worker_workflows_started_total", **labels) == 2
    assert (
        value(
            s,
            "queue_worker_workflows_completed_total",
            workflow=ok.__qualname__,
            status="SUCCESS",
            **labels,
        )
        == 1
    )
    assert (
        value(
            s,
            "queue_worker_workflows_completed_total",
            workflow=boom.__qualname__,
            status="ERROR",
            **labels,
        )
        == 1
    )
    assert total(s, "queue_worker_workflow_duration_seconds_count") == 2
    # Outside a DBOS workflow there is no row to read: no queue wait.
    assert total(s, "queue_worker_workflow_queue_wait_seconds_count") == 0
    assert "_created" not in generate_latest(registry).decode()


def test_cancelled_counts_and_lost_ownership_does_not(registry: CollectorRegistry) -> None:
    @instrumented
    def cancelled() -> None:
        raise DBOSWorkflowCancelledError("cancelled")

    @instrumented
    def taken_over() -> None:
        raise DBOSWorkflowConflictIDError("wf-1")

    with pytest.raises(DBOSWorkflowCancelledError):
        cancelled()
    with pytest.raises(DBOSWorkflowConflictIDError):
        taken_over()
    s = parse(generate_latest(registry).decode())
    assert total(s, "queue_worker_workflows_completed_total", status="CANCELLED") == 1
    # The execution that lost its workflow to another executor counts nothing: the owner does.
    assert total(s, "queue_worker_workflows_completed_total", workflow=taken_over.__qualname__) == 0
    assert total(s, "queue_worker_workflows_started_total", workflow=taken_over.__qualname__) == 1


@pytest.mark.parametrize(("status_after", "counted"), [("CANCELLED", 1), ("ENQUEUED", 0)])
def test_ownership_lost_to_a_cancel_counts_cancelled(
    monkeypatch: pytest.MonkeyPatch, status_after: str, counted: int
) -> None:
    """DBOS 3.4 cancels by taking ownership: the running execution sees a conflict, not a
    cancellation. The row's status tells a cancel (count it) from a resume (the new owner will)."""
    reg = CollectorRegistry()
    fake = FakeQueries(WorkflowTiming("wf", "PENDING", "q", 1_000, 1_500, 1))
    instrumentation.install(register_workflow_metrics(reg), fake)
    monkeypatch.setattr("services.worker.instrumentation.DBOS.workflow_id", "wf-id")
    try:

        @instrumented
        def work() -> None:
            fake.timing = WorkflowTiming("wf", status_after, "q", 1_000, 1_500, 1)
            raise DBOSWorkflowConflictIDError("wf-id")

        with pytest.raises(DBOSWorkflowConflictIDError):
            work()
    finally:
        instrumentation.uninstall()
    s = parse(generate_latest(reg).decode())
    assert total(s, "queue_worker_workflows_completed_total", status="CANCELLED") == counted
    assert total(s, "queue_worker_workflows_completed_total") == counted


def test_queue_wait_only_on_first_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = CollectorRegistry()
    first = WorkflowTiming("wf", "PENDING", "q", 1_000, started_at_ms=3_500, recovery_attempts=1)
    fake = FakeQueries(first)
    instrumentation.install(register_workflow_metrics(reg), fake)
    monkeypatch.setattr("services.worker.instrumentation.DBOS.workflow_id", "wf-id")
    try:

        @instrumented
        def work() -> str:
            return "done"

        work()
        fake.timing = WorkflowTiming("wf", "PENDING", "q", 1_000, 90_000, recovery_attempts=2)
        work()  # a recovery: executed and counted, but its "wait" is not a queue wait
    finally:
        instrumentation.uninstall()
    s = parse(generate_latest(reg).decode())
    assert value(s, "queue_worker_workflows_started_total", workflow="wf", queue="q") == 2
    assert (
        value(
            s, "queue_worker_workflows_completed_total", workflow="wf", queue="q", status="SUCCESS"
        )
        == 2
    )
    assert value(s, "queue_worker_workflow_queue_wait_seconds_count", workflow="wf", queue="q") == 1
    assert value(s, "queue_worker_workflow_queue_wait_seconds_sum", workflow="wf", queue="q") == 2.5
    assert fake.calls == 2


def test_async_workflows_are_instrumented(registry: CollectorRegistry) -> None:
    @instrumented
    async def job() -> int:
        await asyncio.sleep(0)
        return 7

    assert asyncio.run(job()) == 7
    s = parse(generate_latest(registry).decode())
    assert total(s, "queue_worker_workflows_completed_total", status="SUCCESS") == 1


def test_nothing_is_recorded_before_install() -> None:
    instrumentation.uninstall()

    @instrumented
    def work() -> int:
        return 1

    assert work() == 1  # runs, counts nothing, needs no database
