"""The `queue-worker` command as a user runs it: bad flags and environment, migrate, dev."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import sqlalchemy as sa

from tests.support import free_port, wait_for


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["api", "--port", "70000"], {}, "invalid port '70000'"),
        (["worker", "--metrics-port", "abc"], {}, "invalid port 'abc'"),
        (["frobnicate"], {}, "invalid choice: 'frobnicate'"),
        ([], {}, "the following arguments are required: command"),
        (["worker"], {"WORKER_CONCURRENCY": "lots"}, "WORKER_CONCURRENCY='lots' is not an integer"),
        (["api"], {"DBOS_SYSTEM_DATABASE_URL": "redis://x"}, "must start with postgresql://"),
        (["migrate", "--app-role", "app"], {"DBOS_SYSTEM_DATABASE_URL": "sqlite:///x"}, "Postgres only"),  # noqa: E501
    ],
)  # fmt: skip
def test_bad_input_exits_nonzero_with_one_line(
    args: list[str], env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    result = run_cli(*args, env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_migrate_creates_and_upgrades_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    for _ in range(2):  # the second run is an upgrade with nothing to do
        result = run_cli("migrate", env={"DBOS_SYSTEM_DATABASE_URL": url, "LOG_FORMAT": "text"})
        assert result.returncode == 0, result.stderr
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"workflow_status", "workflow_events", "queues", "dbos_migrations"} <= tables


def test_migrate_creates_postgres_schema(pg_admin_url: str) -> None:
    from tests.conftest import _admin_exec, _with_db, drop_pg_database

    name = f"qw_migrate_{os.getpid()}"
    _admin_exec(pg_admin_url, f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    try:
        result = run_cli("migrate", env={"DBOS_SYSTEM_DATABASE_URL": url})
        assert result.returncode == 0, result.stderr
        assert '"message": "schema is up to date"' in result.stderr  # structured JSON logs
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            assert "workflow_status" in sa.inspect(conn).get_table_names(schema="dbos")
        engine.dispose()
    finally:
        drop_pg_database(pg_admin_url, url)


def test_migrate_unreachable_database_fails_cleanly() -> None:
    port = free_port()
    result = run_cli(
        "migrate",
        env={
            "DBOS_SYSTEM_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=2"
        },
    )
    assert result.returncode == 1
    assert "migration failed" in result.stderr


def test_dev_runs_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DBOS_SYSTEM_DATABASE_URL"}
    env["WORKER_POLLING_INTERVAL_SECONDS"] = "0.2"
    log = (tmp_path / "dev.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "dev", "--port", str(port),
         "--metrics-port", str(metrics_port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, what="queue-worker dev to serve")
        assert (tmp_path / "dbos_queue_worker.sqlite").exists()  # the embedded default
        resp = httpx.post(f"{base}/api/workflows", json={"num_steps": 2, "step_seconds": 0.05})
        workflow_id = resp.json()["workflow_id"]
        wait_for(
            lambda: (
                httpx.get(f"{base}/api/workflows/{workflow_id}").json()["workflow_status"]
                == "SUCCESS"
            ),
            timeout=30,
            what="the workflow to finish under dev",
        )
        assert "open http://localhost:" in (tmp_path / "dev.log").read_text()
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        wait_for(
            lambda: (
                not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
            ),
            timeout=5,
            what="every child process to exit",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
