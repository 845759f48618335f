"""Retention on real Postgres and SQLite with real workflows: finished ones older than the
cutoff go with every row keyed by them; nothing in flight is touched; the worker's loop runs it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.common.retention_sql import RetentionQueries
from services.common.sql import create_engine
from tests.conftest import running_stack
from tests.support import Stack, enqueue, wait_for, wait_status, wait_steps

CHILD_TABLES = (
    "workflow_input",
    "workflow_output",
    "operation_outputs",
    "workflow_events",
    "workflow_events_history",
)


def _stack(request: pytest.FixtureRequest, workdir: Path, **env: str) -> Iterator[Stack]:
    backend = request.param
    with running_stack(request, backend, workdir, MAX_NUM_STEPS="50", **env) as s:
        yield s


@pytest.fixture(params=["postgres", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(request, tmp_path, RETENTION_MAX_AGE_SECONDS="0")


def counts(engine: sa.Engine, workflow_id: str) -> dict[str, int]:
    s = "dbos." if engine.dialect.name == "postgresql" else ""
    out = {}
    with engine.connect() as conn:
        for table in ("workflow_status", *CHILD_TABLES):
            out[table] = int(
                conn.execute(
                    sa.text(f"SELECT count(*) FROM {s}{table} WHERE workflow_uuid = :w"),
                    {"w": workflow_id},
                ).scalar_one()
            )
    return out


def test_old_finished_workflows_go_and_nothing_in_flight_is_touched(stack: Stack) -> None:
    engine = create_engine(stack.database_url)
    s = "dbos." if engine.dialect.name == "postgresql" else ""
    with stack.client() as http:
        success = enqueue(http, 2, step_seconds=0.01)
        error = http.post(
            "/api/workflows/fail-after", json={"num_steps": 2, "fail_after_steps": 1}
        ).json()["workflow_id"]
        cancelled = enqueue(http, 1, delay_seconds=600)
        http.post(f"/api/workflows/{cancelled}/cancel")
        delayed = enqueue(http, 1, delay_seconds=600)
        running = enqueue(http, 40, step_seconds=0.25)
        child = enqueue(http, 1, step_seconds=0)
        for wid, status in ((success, "SUCCESS"), (error, "ERROR"), (cancelled, "CANCELLED")):
            wait_status(http, wid, {status})
        wait_status(http, child, {"SUCCESS"})
        wait_steps(http, running, 1)
        with engine.begin() as conn:
            # A finished workflow whose parent still runs stays (the parent may read it), and
            # an in-flight row with an old completed_at (resumed after it had finished) stays.
            conn.execute(
                sa.text(
                    f"UPDATE {s}workflow_status SET parent_workflow_id = :p "
                    "WHERE workflow_uuid = :c"
                ),
                {"p": running, "c": child},
            )
            conn.execute(
                sa.text(f"UPDATE {s}workflow_status SET completed_at = 1 WHERE workflow_uuid = :d"),
                {"d": delayed},
            )
        assert counts(engine, success)["operation_outputs"] > 0
        assert counts(engine, success)["workflow_output"] == 1
        kept_before = {w: counts(engine, w) for w in (delayed, running, child)}

        # Every finished workflow is "old" for a cutoff a minute ahead; batches of 1.
        done = RetentionQueries(engine).run(
            int(time.time() * 1000) + 60_000, batch=1, max_batches=100
        )
        assert done.deleted == 3
        assert done.batches == 4  # three full batches, then an empty one
        for wid in (success, error, cancelled):
            assert set(counts(engine, wid).values()) == {0}, wid
            assert http.get(f"/api/workflows/{wid}").status_code == 404
        assert counts(engine, delayed) == kept_before[delayed]
        assert counts(engine, child) == kept_before[child]
        assert counts(engine, running)["workflow_status"] == 1
        assert http.get(f"/api/workflows/{delayed}").json()["workflow_status"] == "DELAYED"
        # The running workflow carries on to the end, its checkpoints intact.
        assert wait_status(http, running, {"SUCCESS"}, timeout=60)["steps_completed"] == 40
    engine.dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def retaining_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(
        request, tmp_path, RETENTION_MAX_AGE_SECONDS="1", RETENTION_INTERVAL_SECONDS="0.3"
    )


def test_the_worker_deletes_finished_workflows_past_the_age(retaining_stack: Stack) -> None:
    with retaining_stack.client() as http:
        running = enqueue(http, 12, step_seconds=0.25)
        finished = enqueue(http, 1, step_seconds=0)
        wait_status(http, finished, {"SUCCESS"})

        def gone() -> bool:
            return http.get(f"/api/workflows/{finished}").status_code == 404

        wait_for(gone, timeout=15, what="the worker's retention to delete the finished workflow")
        seen = http.get(f"/api/workflows/{running}")
        assert seen.status_code == 200
        assert seen.json()["workflow_status"] in {"ENQUEUED", "PENDING", "SUCCESS"}
        assert "retention deleted" in retaining_stack.workers[0].log()
        metrics = httpx.get(
            f"http://127.0.0.1:{retaining_stack.worker_ports[0]}/metrics", timeout=5
        ).text
        assert "queue_worker_retention_deleted_workflows_total" in metrics
