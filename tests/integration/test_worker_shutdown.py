"""SIGTERM during a workflow: the worker stops dequeuing, lets the workflow finish, exits 0."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support import Stack, enqueue, wait_for, wait_status, wait_steps


def test_sigterm_lets_in_flight_workflow_finish(database_url: str, tmp_path: Path) -> None:
    stack = Stack(database_url, tmp_path, WORKER_SHUTDOWN_GRACE_SECONDS="20")
    try:
        stack.start_api()
        worker = stack.start_worker()
        with stack.client() as http:
            running = enqueue(http, 6, step_seconds=0.5)
            wait_steps(http, running, 1)
            started = time.monotonic()
            worker.proc.send_signal(15)
            # Readiness drops at once, so Kubernetes stops routing to a draining pod.
            wait_for(
                lambda: (
                    httpx.get(f"http://127.0.0.1:{stack.worker_ports[0]}/readyz").status_code == 503
                ),
                timeout=5,
                what="/readyz to report draining",
            )
            # Enqueued after SIGTERM: a draining worker must not pick it up.
            waiting = enqueue(http, 1, step_seconds=0)
            assert worker.proc.wait(timeout=25) == 0, worker.log()[-2000:]
            elapsed = time.monotonic() - started
            done = http.get(f"/api/workflows/{running}").json()
            assert done["workflow_status"] == "SUCCESS", worker.log()[-2000:]
            assert done["steps_completed"] == 6
            assert elapsed < 20
            assert http.get(f"/api/workflows/{waiting}").json()["workflow_status"] == "ENQUEUED"
            # Nothing is lost: the next worker picks the waiting one up.
            stack.start_worker(executor_id="test-worker-next")
            wait_status(http, waiting, {"SUCCESS"})
    finally:
        stack.stop()


def test_grace_period_is_a_bound(database_url: str, tmp_path: Path) -> None:
    """A workflow longer than the grace period does not hold the pod: exit 0 once it expires."""
    stack = Stack(database_url, tmp_path, WORKER_SHUTDOWN_GRACE_SECONDS="1")
    try:
        stack.start_api()
        worker = stack.start_worker()
        with stack.client() as http:
            slow = enqueue(http, 3, step_seconds=10)
            wait_status(http, slow, {"PENDING"})
            started = time.monotonic()
            worker.proc.send_signal(15)
            assert worker.proc.wait(timeout=15) == 0
            assert time.monotonic() - started < 8
            assert http.get(f"/api/workflows/{slow}").json()["workflow_status"] != "SUCCESS"
    finally:
        stack.stop()
