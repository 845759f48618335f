"""Database fixtures: a real Postgres (one fresh database per use, cloned from a migrated template)
and a real SQLite file (copied from a migrated template file).

Postgres comes from TEST_DATABASE_URL (an admin URL, e.g. postgresql://postgres@127.0.0.1:5432/
postgres), else a server on 127.0.0.1:5432 if one answers (CI's), else a testcontainers Postgres
(needs Docker). The tests never skip for want of Postgres: they fail and say why.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from services.common.migrate import migrate_schema
from tests.support import Stack

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        if not _reachable(explicit):
            pytest.fail(f"TEST_DATABASE_URL={explicit} does not answer")
        yield explicit
        return
    if _reachable(LOCAL_ADMIN_URL):
        yield LOCAL_ADMIN_URL
        return
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError:  # pragma: no cover
        pytest.fail("no Postgres: set TEST_DATABASE_URL or install testcontainers and Docker")
    with PostgresContainer("postgres:16-alpine", driver=None) as pg:
        yield pg.get_connection_url()


def _with_db(url: str, name: str) -> str:
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin_exec(admin_url: str, sql: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.encode())


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A migrated database used as CREATE DATABASE ... TEMPLATE for each test's own database."""
    name = f"qw_tmpl_{uuid.uuid4().hex[:10]}"
    _admin_exec(pg_admin_url, f'CREATE DATABASE "{name}"')
    migrate_schema(_with_db(pg_admin_url, name))
    yield name
    _admin_exec(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_pg_database(admin_url: str, template: str) -> str:
    name = f"qw_test_{uuid.uuid4().hex[:12]}"
    _admin_exec(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return _with_db(admin_url, name)


def drop_pg_database(admin_url: str, url: str) -> None:
    name = sa.make_url(url).database
    _admin_exec(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    migrate_schema(f"sqlite:///{path}")
    return path


@pytest.fixture
def pg_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated Postgres database for one test."""
    url = new_pg_database(pg_admin_url, pg_template)
    yield url
    drop_pg_database(pg_admin_url, url)


def new_sqlite_database(template: Path, directory: Path) -> str:
    path = directory / f"qw-{uuid.uuid4().hex[:8]}.sqlite"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return new_sqlite_database(sqlite_template, tmp_path)


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """One fresh, migrated database of each kind: the test runs once on each."""
    fixture = "pg_url" if request.param == "postgres" else "sqlite_url"
    return str(request.getfixturevalue(fixture))


@contextmanager
def running_stack(
    request: pytest.FixtureRequest, backend: str, workdir: Path, **env: str
) -> Iterator[Stack]:
    """An API and one worker on a fresh, migrated database of `backend` ("postgres" or
    "sqlite"), for module-scoped fixtures; stopped, and the database dropped, afterwards."""
    admin = ""
    if backend == "postgres":
        admin = request.getfixturevalue("pg_admin_url")
        url = new_pg_database(admin, request.getfixturevalue("pg_template"))
    else:
        url = new_sqlite_database(request.getfixturevalue("sqlite_template"), workdir)
    try:
        with Stack(url, workdir, **env).running() as stack:
            yield stack
    finally:
        if backend == "postgres":
            drop_pg_database(admin, url)
