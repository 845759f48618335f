"""Fairness with a real API and a real worker, on Postgres and on SQLite: a per-key concurrency
(WORKER_PARTITION_CONCURRENCY) and a queue rate limit (WORKER_RATE_LIMIT) hold, and the queue
metrics count what they hold back apart from what could run."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.common.names import WORKFLOW_QUEUE
from tests.conftest import running_stack
from tests.metrics.scrape import parse, value
from tests.support import Stack, wait_for, wait_status


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def partitioned(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"fair-{backend}")
    with running_stack(request, backend, workdir, WORKER_PARTITION_CONCURRENCY="1") as s:
        yield s


@pytest.fixture(scope="module")
def rate_limited(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"rated-{backend}")
    env = {"WORKER_RATE_LIMIT": "2", "WORKER_RATE_PERIOD_SECONDS": "4"}
    with running_stack(request, backend, workdir, **env) as s:
        yield s


def _ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp() * 1000


def _queue_metrics(http: httpx.Client) -> dict[str, float | None]:
    samples = parse(http.get("/metrics").text)
    out = {
        "depth": value(samples, "queue_worker_queue_depth", queue=WORKFLOW_QUEUE),
        "runnable": value(samples, "queue_worker_queue_runnable", queue=WORKFLOW_QUEUE),
    }
    for reason in ("partition_concurrency", "rate_limit", "delayed"):
        out[reason] = value(samples, "queue_worker_queue_held", queue=WORKFLOW_QUEUE, reason=reason)
    return out


def _status(http: httpx.Client, workflow_id: str) -> str:
    return str(http.get(f"/api/workflows/{workflow_id}").json()["workflow_status"])


def _enqueue(http: httpx.Client, key: str | None, num_steps: int, step: float) -> str:
    body: dict[str, Any] = {"num_steps": num_steps, "step_seconds": step}
    if key is not None:
        body["partition_key"] = key
    resp = http.post("/api/workflows", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["partition_key"] == (key or "default")
    return str(resp.json()["workflow_id"])


def test_one_key_runs_one_at_a_time_while_another_key_runs(partitioned: Stack) -> None:
    with partitioned.client() as http:
        a = [_enqueue(http, "tenant-a", 8, 0.25) for _ in range(3)]
        b = _enqueue(http, "tenant-b", 8, 0.25)
        # While one of tenant-a's and tenant-b's run, tenant-a's other two wait on the per-key
        # limit: held, not runnable, so they would scale no worker up. (Which of tenant-a's runs
        # first is not fixed: SQLite's created_at has whole seconds, so they tie.)
        wait_for(
            lambda: "PENDING" in [_status(http, w) for w in a],
            timeout=30,
            interval=0.05,
            what="one tenant-a workflow to start",
        )
        wait_status(http, b, {"PENDING"})
        m = _queue_metrics(http)
        assert (m["depth"], m["runnable"], m["partition_concurrency"]) == (2, 0, 2)
        assert m["rate_limit"] == m["delayed"] == 0
        done = [wait_status(http, w, {"SUCCESS"}) for w in [*a, b]]
    runs = [(_ms(d["started_at"]), _ms(d["completed_at"])) for d in done]
    a_runs = sorted(runs[:3])
    for (_, end), (start, _) in itertools.pairwise(a_runs):
        assert start >= end, f"two tenant-a workflows overlapped: {a_runs}"
    b_start, b_end = runs[3]
    # tenant-b ran beside tenant-a's first, not after it.
    assert b_start < a_runs[0][1], (b_start, a_runs)
    assert a_runs[0][0] < b_end, (b_end, a_runs)
    assert done[0]["partition_key"] == "tenant-a"


def test_unkeyed_work_runs_under_the_default_key(partitioned: Stack) -> None:
    with partitioned.client() as http:
        workflow_id = _enqueue(http, None, 1, 0.0)
        assert wait_status(http, workflow_id, {"SUCCESS"})["partition_key"] == "default"


def test_a_rate_limit_holds_and_the_metrics_say_so(rate_limited: Stack) -> None:
    with rate_limited.client() as http:
        ids = [_enqueue(http, None, 1, 0.0) for _ in range(5)]
        # Two start in the first window; the other three are held by the rate limit.
        wait_for(
            lambda: [_status(http, w) for w in ids].count("SUCCESS") >= 2,
            timeout=30,
            interval=0.1,
            what="the first window's two workflows",
        )
        m = _queue_metrics(http)
        assert (m["depth"], m["runnable"], m["rate_limit"]) == (3, 0, 3)
        assert m["partition_concurrency"] == 0
        done = [wait_status(http, w, {"SUCCESS"}) for w in ids]
        m = _queue_metrics(http)
        assert (m["depth"], m["runnable"]) == (0, 0)
    starts = sorted(_ms(d["started_at"]) for d in done)
    # At most 2 starts in any 4 s window: the 3rd waits for the 1st to leave the window.
    for first, third in zip(starts, starts[2:], strict=False):
        assert third - first >= 3900, starts


def test_a_scheduled_run_runs_on_a_partitioned_queue(partitioned: Stack) -> None:
    """A partitioned queue dequeues only rows with a key: scheduled runs get the default one."""
    with partitioned.client() as http:
        body = {
            "name": "fair-nightly",
            "type": "demo",
            "input": {"num_steps": 1, "step_seconds": 0},
            "cron": "0 0 1 1 *",
        }
        assert http.post("/api/schedules", json=body).status_code == 201
        resp = http.post("/api/schedules/fair-nightly/trigger")
        assert resp.status_code == 202, resp.text
        workflow_id = resp.json()["workflow_id"]
        wait_for(
            lambda: http.get(f"/api/workflows/{workflow_id}").status_code == 200,
            timeout=30,
            what="the scheduled run to be enqueued",
        )
        run = wait_status(http, workflow_id, {"SUCCESS", "ERROR"}, timeout=30)
    assert (run["workflow_status"], run["partition_key"]) == ("SUCCESS", "default")
