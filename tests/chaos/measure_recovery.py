"""Prints the time from kill -9 of a busy worker to its workflow running on another worker, with
the production liveness defaults (heartbeat 5 s, dead after 30 s, sweep every 10 s) unless
overridden by the environment. Usage: python -m tests.chaos.measure_recovery [RUNS]

Uses a fresh database on the local Postgres (127.0.0.1:5432, or TEST_DATABASE_URL).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from services.common.migrate import migrate_schema
from tests.conftest import LOCAL_ADMIN_URL, _admin_exec, _with_db, drop_pg_database
from tests.support import Stack, enqueue, wait_for


def measure_once(admin_url: str, workdir: Path) -> float:
    name = f"qw_recovery_{os.getpid()}_{int(time.time())}"
    _admin_exec(admin_url, f'CREATE DATABASE "{name}"')
    url = _with_db(admin_url, name)
    stack = Stack(url, workdir)
    for key in ("WORKER_HEARTBEAT_SECONDS", "WORKER_DEAD_AFTER_SECONDS",
                "WORKER_RECOVERY_SWEEP_SECONDS", "WORKER_POLLING_INTERVAL_SECONDS"):  # fmt: skip
        stack.env.pop(key, None)  # production defaults
        if key in os.environ:
            stack.env[key] = os.environ[key]
    try:
        migrate_schema(url)
        stack.start_api()
        doomed = stack.start_worker("doomed")
        with stack.client() as http:
            wf = enqueue(http, 200, step_seconds=1)
            wait_for(
                lambda: http.get(f"/api/workflows/{wf}").json()["workflow_status"] == "PENDING",
                timeout=30,
                what="the workflow to start",
            )
            stack.start_worker("survivor")
            doomed.proc.kill()
            killed = time.monotonic()

            def taken_over() -> bool:
                w = httpx.get(f"{stack.base_url}/api/workflows/{wf}").json()
                return bool(w["executor_id"] == "survivor" and w["workflow_status"] == "PENDING")

            wait_for(taken_over, timeout=180, interval=0.1, what="the survivor to take over")
            return time.monotonic() - killed
    finally:
        stack.stop()
        drop_pg_database(admin_url, url)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    admin = os.environ.get("TEST_DATABASE_URL", LOCAL_ADMIN_URL)
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            seconds = measure_once(admin, Path(tmp))
        print(f"run {i + 1}: kill -9 to running on another worker: {seconds:.1f}s", flush=True)


if __name__ == "__main__":
    main()
