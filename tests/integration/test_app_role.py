"""The runtime role is not the migration role: `migrate --app-role` grants a login role what the
services need, and the services then run as that role without DDL rights."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.conftest import _admin_exec, _with_db, drop_pg_database
from tests.support import Stack, enqueue, wait_status


def test_services_run_as_a_granted_app_role(pg_admin_url: str, tmp_path: Path) -> None:
    role = f"qw_app_{uuid.uuid4().hex[:8]}"
    db = f"qw_role_{uuid.uuid4().hex[:8]}"
    _admin_exec(pg_admin_url, f'CREATE DATABASE "{db}"')
    _admin_exec(pg_admin_url, f"CREATE ROLE {role} LOGIN")
    admin_url = _with_db(pg_admin_url, db)
    app_url = sa.make_url(admin_url).set(username=role, password=None).render_as_string(False)
    stack = Stack(app_url, tmp_path, RUN_MIGRATIONS="false")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "migrate", "--app-role", role],
            env={**os.environ, "DBOS_SYSTEM_DATABASE_URL": admin_url},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

        stack.start_api()
        stack.start_worker()
        with stack.client() as http:
            wf = enqueue(http, 2, step_seconds=0.05)
            assert wait_status(http, wf, {"SUCCESS", "ERROR"})["workflow_status"] == "SUCCESS"

        with psycopg.connect(app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE dbos.not_allowed (x int)")
    finally:
        stack.stop()
        drop_pg_database(pg_admin_url, admin_url)
        _admin_exec(pg_admin_url, f"DROP ROLE IF EXISTS {role}")
