"""Metrics of real API and worker processes on Postgres; the timing query on both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dbos import DBOSClient, EnqueueOptions, WorkflowHandle

from services.common.names import APP_NAME, DEMO_WORKFLOW, WORKFLOW_QUEUE
from services.common.sql import WorkflowQueries, create_engine
from tests.metrics.scrape import Samples, scrape, total, value
from tests.support import Stack, enqueue, wait_for, wait_status

Q = {"queue": WORKFLOW_QUEUE}
WF = {"workflow": DEMO_WORKFLOW, "queue": WORKFLOW_QUEUE}


@pytest.fixture
def stack(pg_url: str, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(pg_url, tmp_path, WORKER_CONCURRENCY="2")
    s.start_api()
    yield s
    s.stop()


def worker_metrics(stack: Stack, i: int = 0) -> Samples:
    return scrape(f"http://127.0.0.1:{stack.worker_ports[i]}/metrics")


@pytest.mark.postgres
def test_completions_durations_and_queue_waits(stack: Stack) -> None:
    stack.start_worker()
    with stack.client() as client:
        ids = [enqueue(client, 1, step_seconds=0.05) for _ in range(6)]
        for wf in ids:
            wait_status(client, wf, {"SUCCESS"})
    s = worker_metrics(stack)
    assert value(s, "queue_worker_workflows_started_total", **WF) == 6
    assert value(s, "queue_worker_workflows_completed_total", status="SUCCESS", **WF) == 6
    assert total(s, "queue_worker_workflows_completed_total", status="ERROR") == 0
    assert value(s, "queue_worker_workflow_duration_seconds_count", status="SUCCESS", **WF) == 6
    assert value(s, "queue_worker_workflow_queue_wait_seconds_count", **WF) == 6
    # Six workflows, two at a time: the last ones waited for the first ones.
    wait_sum = value(s, "queue_worker_workflow_queue_wait_seconds_sum", **WF)
    assert wait_sum is not None
    assert wait_sum > 0
    assert value(s, "queue_worker_worker_concurrency", **Q) == 2
    assert value(s, "queue_worker_worker_in_flight", **Q) == 0
    text = httpx.get(f"http://127.0.0.1:{stack.worker_ports[0]}/metrics").text
    api_text = httpx.get(f"{stack.base_url}/metrics").text
    assert "_created" not in text
    assert "_created" not in api_text

    api = scrape(f"{stack.base_url}/metrics")
    assert value(api, "queue_worker_queue_depth", **Q) == 0
    assert value(api, "queue_worker_queue_in_flight", **Q) == 0
    assert value(api, "queue_worker_queue_worker_concurrency", **Q) == 2
    assert value(api, "queue_worker_queue_stats_up") == 1
    assert (value(api, "queue_worker_queue_stats_query_duration_seconds") or 0) > 0
    last = value(api, "queue_worker_queue_stats_last_success_timestamp_seconds") or 0
    assert abs(time.time() - last) < 60
    assert (
        value(
            api,
            "queue_worker_http_requests_total",
            handler="enqueue_workflow",
            method="POST",
            status="202",
        )
        == 6
    )


@pytest.mark.postgres
def test_in_flight_gauges_and_a_cancelled_workflow(stack: Stack) -> None:
    stack.start_worker()
    with stack.client() as client:
        wf = enqueue(client, 40, step_seconds=0.2)
        wait_status(client, wf, {"PENDING"})
        wait_for(
            lambda: value(worker_metrics(stack), "queue_worker_worker_in_flight", **Q) == 1,
            timeout=10,
            what="the worker to report one workflow in flight",
        )
        s = worker_metrics(stack)
        assert value(s, "queue_worker_worker_workflows_active") == 1
        api = scrape(f"{stack.base_url}/metrics")
        assert value(api, "queue_worker_queue_in_flight", **Q) == 1

        assert client.post(f"/api/workflows/{wf}/cancel").status_code < 300
        wait_status(client, wf, {"CANCELLED"})
    # The workflow's thread notices the cancellation at its next step and stops.
    wait_for(
        lambda: (
            value(
                worker_metrics(stack),
                "queue_worker_workflows_completed_total",
                status="CANCELLED",
                **WF,
            )
            == 1
        ),
        timeout=15,
        what="the cancelled workflow to be counted",
    )
    s = worker_metrics(stack)
    assert value(s, "queue_worker_worker_in_flight", **Q) == 0
    assert total(s, "queue_worker_workflows_completed_total", status="SUCCESS") == 0
    assert value(s, "queue_worker_workflow_duration_seconds_count", status="CANCELLED", **WF) == 1


@pytest.mark.postgres
def test_a_recovered_workflow_is_counted_once_by_the_worker_that_finishes_it(
    stack: Stack,
) -> None:
    """SIGKILL mid-run: the dead worker counted nothing; its successor (same executor id, so
    DBOS's startup recovery re-runs the workflow) counts one start and one completion, and no
    queue wait (the workflow's first dispatch was long ago)."""
    first = stack.start_worker(executor_id="metrics-recovery")
    with stack.client() as client:
        wf = enqueue(client, 8, step_seconds=0.4)
        wait_for(
            lambda: (client.get(f"/api/workflows/{wf}").json().get("steps_completed") or 0) >= 2,
            timeout=30,
            what="two steps to complete",
        )
        s = worker_metrics(stack, 0)
        assert value(s, "queue_worker_workflows_started_total", **WF) == 1
        assert total(s, "queue_worker_workflows_completed_total") == 0
        first.kill()
        stack.start_worker(executor_id="metrics-recovery")
        wait_status(client, wf, {"SUCCESS"}, timeout=60)
    s = worker_metrics(stack, 1)
    assert value(s, "queue_worker_workflows_started_total", **WF) == 1
    assert value(s, "queue_worker_workflows_completed_total", status="SUCCESS", **WF) == 1
    assert (value(s, "queue_worker_workflow_queue_wait_seconds_count", **WF) or 0) == 0


def test_workflow_timing_reads_one_row_on_both_databases(database_url: str) -> None:
    client = DBOSClient(system_database_url=database_url, application_name=APP_NAME)
    try:
        before = int(time.time() * 1000)
        handle: WorkflowHandle[Any] = client.enqueue(
            EnqueueOptions(workflow_name=DEMO_WORKFLOW, queue_name=WORKFLOW_QUEUE), 1
        )
    finally:
        client.destroy()
    queries = WorkflowQueries(create_engine(database_url, pool_size=1))
    try:
        timing = queries.workflow_timing(handle.get_workflow_id())
        assert timing is not None
        assert (timing.name, timing.queue_name) == (DEMO_WORKFLOW, WORKFLOW_QUEUE)
        assert before - 5000 <= timing.created_at_ms <= int(time.time() * 1000) + 5000
        assert timing.started_at_ms is None  # never dequeued: no worker runs here
        assert timing.recovery_attempts == 0
        assert queries.workflow_timing("no-such-workflow") is None
    finally:
        queries.engine.dispose()
