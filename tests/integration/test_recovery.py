"""Nothing lost: a killed worker's work is recovered by its peers, a drained worker hands back what
it could not finish, and a retired version's orphans wait for an explicit operator command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from tests.support import Stack, enqueue, wait_for, wait_status, wait_steps

# Compressed liveness timings so the tests take seconds; production defaults are 5 / 30 / 10 s.
FAST_LIVENESS = {
    "WORKER_HEARTBEAT_SECONDS": "0.3",
    "WORKER_DEAD_AFTER_SECONDS": "1.5",
    "WORKER_RECOVERY_SWEEP_SECONDS": "0.5",
}


def workflow(http: httpx.Client, workflow_id: str) -> dict[str, Any]:
    body: dict[str, Any] = http.get(f"/api/workflows/{workflow_id}").json()
    return body


def step_rows(database_url: str, workflow_id: str) -> list[tuple[int, int | None]]:
    """(function_id, completed_at_epoch_ms) of each demo step DBOS checkpointed."""
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    table = "dbos.operation_outputs" if engine.dialect.name == "postgresql" else "operation_outputs"
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    f"SELECT function_id, completed_at_epoch_ms FROM {table} "
                    "WHERE workflow_uuid = :w AND function_name LIKE '%demo_step' "
                    "ORDER BY function_id"
                ),
                {"w": workflow_id},
            ).all()
    finally:
        engine.dispose()
    return [(int(r[0]), r[1]) for r in rows]


def test_killed_worker_is_recovered_by_a_peer(database_url: str, tmp_path: Path) -> None:
    stack = Stack(database_url, tmp_path, **FAST_LIVENESS)
    try:
        stack.start_api()
        doomed = stack.start_worker("doomed")
        with stack.client() as http:
            wf = enqueue(http, 8, step_seconds=0.4)
            wait_steps(http, wf, 2)
            survivor = stack.start_worker("survivor")
            killed_at_ms = int(time.time() * 1000)
            doomed.proc.kill()  # SIGKILL: no drain, no hand-back
            killed = time.monotonic()
            doomed.proc.wait()
            before_kill = [row for row in step_rows(database_url, wf) if row[1] is not None]
            assert len(before_kill) >= 2

            wait_for(
                lambda: workflow(http, wf).get("executor_id") == "survivor",
                timeout=30,
                interval=0.05,
                what="the survivor to take the workflow over",
            )
            recovery_sec = time.monotonic() - killed
            done = wait_status(http, wf, {"SUCCESS", "ERROR"})
            assert done["workflow_status"] == "SUCCESS"
            assert done["steps_completed"] == 8
            # Every step is checkpointed once; those done before the kill were not run again.
            after = step_rows(database_url, wf)
            assert [fid for fid, _ in after] == sorted({fid for fid, _ in after})
            assert len(after) == 8
            for fid, completed_at in before_kill:
                assert dict(after)[fid] == completed_at
                assert completed_at is not None
                assert completed_at <= killed_at_ms + 50
            metrics = httpx.get(f"http://127.0.0.1:{stack.worker_ports[1]}/metrics").text
            assert "queue_worker_recovered_workflows_total 1.0" in metrics
            assert survivor.proc.poll() is None
            # dead-after 1.5 s + sweep 0.5 s + heartbeat 0.3 s, plus a dequeue poll
            print(f"kill -9 to running elsewhere: {recovery_sec:.2f}s")
            assert recovery_sec < 15
    finally:
        stack.stop()


def test_drained_worker_hands_back_unfinished_work(database_url: str, tmp_path: Path) -> None:
    # Sweeps off: only the hand-back can make the next worker pick the workflow up.
    stack = Stack(
        database_url,
        tmp_path,
        WORKER_SHUTDOWN_GRACE_SECONDS="1",
        WORKER_RECOVERY_SWEEP_SECONDS="0",
    )
    try:
        stack.start_api()
        first = stack.start_worker("first")
        with stack.client() as http:
            wf = enqueue(http, 6, step_seconds=1.0)
            wait_steps(http, wf, 1)
            first.proc.terminate()
            assert first.proc.wait(timeout=15) == 0
            assert "handed back unfinished workflows" in first.log()
            assert workflow(http, wf)["workflow_status"] == "ENQUEUED"
            stack.start_worker("second")
            done = wait_status(http, wf, {"SUCCESS", "ERROR"}, timeout=60)
            assert done["workflow_status"] == "SUCCESS"
            assert done["steps_completed"] == 6
            assert done["executor_id"] == "second"
    finally:
        stack.stop()


def test_orphans_of_another_version_wait_for_the_operator(
    database_url: str, tmp_path: Path
) -> None:
    stack = Stack(database_url, tmp_path, **FAST_LIVENESS)
    try:
        stack.start_api()
        old = stack.start_worker("old-pod", DBOS__APPVERSION="v1")
        with stack.client() as http:
            wf = enqueue(http, 4, step_seconds=0.5)
            wait_status(http, wf, {"PENDING"})
            old.proc.kill()
            old.proc.wait()
            stack.start_worker("new-pod", DBOS__APPVERSION="v2")
            metrics_url = f"http://127.0.0.1:{stack.worker_ports[1]}/metrics"
            wait_for(
                lambda: "queue_worker_orphaned_workflows 1.0" in httpx.get(metrics_url).text,
                timeout=20,
                what="the orphan to be counted",
            )
            assert workflow(http, wf)["workflow_status"] == "PENDING"  # not auto-recovered

            env = {**os.environ, **stack.env, "LOG_FORMAT": "json"}
            alive = subprocess.run(
                [sys.executable, "-m", "services.cli", "recover", "--executor-id", "new-pod"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert alive.returncode == 1
            assert "alive" in alive.stderr
            result = subprocess.run(
                [sys.executable, "-m", "services.cli", "recover", "--executor-id", "old-pod",
                 "--to-version", "v2"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert '"workflows": 1' in result.stderr
            done = wait_status(http, wf, {"SUCCESS", "ERROR"})
            assert done["workflow_status"] == "SUCCESS"
            assert (done["app_version"], done["executor_id"]) == ("v2", "new-pod")
    finally:
        stack.stop()
