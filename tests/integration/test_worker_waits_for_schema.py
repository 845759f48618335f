"""A worker that must not migrate (RUN_MIGRATIONS=false, as the chart runs it) on a database the
migrations Job has not reached yet: it stays alive and not ready, then starts once the schema
appears, instead of exiting into a restart back-off (seen on the first install with the chart's
throwaway Postgres, where the Job runs beside the pods)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.conftest import _admin_exec, _with_db, drop_pg_database
from tests.support import ServiceProcess, free_port, service_env, wait_for


def _worker(url: str, tmp_path: Path, name: str) -> tuple[ServiceProcess, int]:
    port = free_port()
    env = service_env(url, RUN_MIGRATIONS="false", DBOS__VMID=name)
    worker = ServiceProcess(
        ["worker", "--metrics-host", "127.0.0.1", "--metrics-port", str(port)],
        env,
        tmp_path / f"{name}.log",
    )
    worker.wait_http_ok(f"http://127.0.0.1:{port}/healthz")
    return worker, port


def test_worker_waits_for_the_schema_then_starts(pg_admin_url: str, tmp_path: Path) -> None:
    db = f"qw_noschema_{uuid.uuid4().hex[:8]}"
    _admin_exec(pg_admin_url, f'CREATE DATABASE "{db}"')
    url = _with_db(pg_admin_url, db)
    worker, port = _worker(url, tmp_path, "early")
    stopped, _ = _worker(url, tmp_path, "stopped-while-waiting")
    try:
        wait_for(lambda: "waiting for the schema" in worker.log(), timeout=30, what="the wait log")
        time.sleep(2)
        assert worker.proc.poll() is None, worker.log()[-2000:]
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code != 200

        # SIGTERM while waiting: a clean exit, nothing claimed.
        assert stopped.terminate(timeout=15) == 0

        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "migrate"],
            env={**os.environ, "DBOS_SYSTEM_DATABASE_URL": url},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        worker.wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=60)
        wait_for(lambda: "worker ready" in worker.log(), timeout=60, what="the worker to launch")
        assert worker.terminate() == 0
    finally:
        for proc in (worker, stopped):
            if proc.proc.poll() is None:
                proc.proc.kill()
        drop_pg_database(pg_admin_url, url)
