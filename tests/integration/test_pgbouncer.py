"""PgBouncer in front of Postgres: session mode works for DBOS and bounds the server connections;
transaction mode breaks what DBOS relies on. A real PgBouncer process (tests/pgbouncer.py), real
API and worker processes, the real test Postgres.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from dbos import DBOS, DBOSClient

from services.common.names import APP_NAME, DEMO_WORKFLOW, WORKFLOW_QUEUE
from services.common.wake_sql import WAKE_CHANNEL
from tests.pgbouncer import PgBouncer, server_connections
from tests.support import Stack, enqueue, wait_for, wait_status

POOLED = {"DATABASE_POOLER": "pgbouncer-session"}


@pytest.fixture
def bouncers() -> Iterator[list[PgBouncer]]:
    """PgBouncers a test starts (append to the list); all stopped afterwards."""
    started: list[PgBouncer] = []
    yield started
    for b in started:
        b.stop()


def _bouncer(bouncers: list[PgBouncer], admin_url: str, mode: str, pool_size: int) -> PgBouncer:
    b = PgBouncer(admin_url, pool_mode=mode, pool_size=pool_size)
    bouncers.append(b)
    return b


def _db(url: str) -> str:
    return str(sa.make_url(url).database)


def _start_latencies_ms(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT started_at_epoch_ms - created_at FROM dbos.workflow_status"
            " WHERE started_at_epoch_ms IS NOT NULL ORDER BY created_at"
        ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.mark.postgres
def test_api_and_worker_through_a_session_pooler_run_workflows_and_wake_on_enqueue(
    pg_url: str, pg_admin_url: str, bouncers: list[PgBouncer], tmp_path: Path
) -> None:
    bouncer = _bouncer(bouncers, pg_admin_url, "session", pool_size=6)
    # A 5 s polling timer: a start well under a second after the enqueue was a wake-up, which
    # reached the worker's LISTEN session through PgBouncer.
    stack = Stack(bouncer.url(pg_url), tmp_path, **POOLED, WORKER_POLLING_INTERVAL_SECONDS="5")
    try:
        stack.start_api()
        stack.start_worker()
        wait_for(
            lambda: "wake listener connected" in stack.workers[0].log(),
            timeout=30,
            what="the wake listener to connect through PgBouncer",
        )
        with stack.client() as client:
            for _ in range(3):  # one at a time, each on an idle queue
                done = wait_status(client, enqueue(client, 2), {"SUCCESS", "ERROR"}, timeout=30)
                assert done["workflow_status"] == "SUCCESS", done
                assert done["steps_completed"] == 2
        latencies = _start_latencies_ms(pg_url)
        assert len(latencies) == 3
        assert max(latencies) < 1000, latencies
        # Everything went through PgBouncer, so Postgres never saw more than its pool.
        assert server_connections(pg_admin_url, _db(pg_url)) <= bouncer.pool_size
    finally:
        stack.stop()


@pytest.mark.postgres
def test_a_burst_on_several_workers_keeps_postgres_within_the_poolers_pool(
    pg_url: str, pg_admin_url: str, bouncers: list[PgBouncer], tmp_path: Path
) -> None:
    """Three workers at concurrency 10 hold 6 LISTEN sessions for good (DBOS's and ours, each)
    and open a short client session per checkout: more clients than the pool of 10, never more
    server connections than 10."""
    bouncer = _bouncer(bouncers, pg_admin_url, "session", pool_size=10)
    stack = Stack(bouncer.url(pg_url), tmp_path, **POOLED, WORKER_CONCURRENCY="10")
    peaks = {"server": 0, "clients": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peaks["server"] = max(peaks["server"], server_connections(pg_admin_url, _db(pg_url)))
            peaks["clients"] = max(peaks["clients"], bouncer.clients(_db(pg_url)))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        stack.start_api()
        for _ in range(3):
            stack.start_worker()
        sampler.start()
        with stack.client() as client:
            ids = [enqueue(client, 3) for _ in range(60)]
            for workflow_id in ids:
                done = wait_status(client, workflow_id, {"SUCCESS", "ERROR"}, timeout=120)
                assert done["workflow_status"] == "SUCCESS", done
    finally:
        stop.set()
        sampler.join(5)
        stack.stop()
    # (Read directly, so after sampling: this connection does not go through PgBouncer.)
    executors = _executors(pg_url)
    assert len(executors) == 3, executors  # all three workers took part
    assert peaks["server"] <= bouncer.pool_size, peaks
    assert peaks["clients"] > bouncer.pool_size, peaks


def _executors(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT DISTINCT executor_id FROM dbos.workflow_status").fetchall()
    return {str(r[0]) for r in rows}


@pytest.mark.postgres
def test_dbos_migrations_session_advisory_lock_works_through_a_session_pooler(
    pg_admin_url: str, bouncers: list[PgBouncer]
) -> None:
    """DBOS.migrate takes pg_try_advisory_lock and unlocks on the same session."""
    bouncer = _bouncer(bouncers, pg_admin_url, "session", pool_size=3)
    name = f"qw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        url = sa.make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
        DBOS.migrate(bouncer.url(url))
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT max(version) FROM dbos.dbos_migrations").fetchone()
            # Unlocked: no advisory lock survives the migration's session.
            locks = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            assert locks.fetchone() == (0,)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _notifications_heard(listen_url: str, enqueue_url: str) -> list[str]:
    """LISTEN on the wake-up channel at `listen_url`, enqueue one workflow directly (the
    migrated trigger NOTIFYs), and return the payloads heard within 2 s."""
    with psycopg.connect(listen_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        client = DBOSClient(system_database_url=enqueue_url, application_name=APP_NAME)
        try:
            options: Any = {"queue_name": WORKFLOW_QUEUE, "workflow_name": DEMO_WORKFLOW}
            client.enqueue(options, 1, 0.0)
        finally:
            client.destroy()
        return [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]


@pytest.mark.postgres
@pytest.mark.parametrize(("mode", "heard"), [("session", [WORKFLOW_QUEUE]), ("transaction", [])])
def test_listen_through_pgbouncer_hears_notifications_only_in_session_mode(
    pg_url: str, pg_admin_url: str, bouncers: list[PgBouncer], mode: str, heard: list[str]
) -> None:
    """Transaction mode hands the server connection back once LISTEN's transaction ends: the
    NOTIFY reaches a server connection no client listens on, and is lost, without any error."""
    bouncer = _bouncer(bouncers, pg_admin_url, mode, pool_size=2)
    assert _notifications_heard(bouncer.url(pg_url), pg_url) == heard


def _try_lock_from_two_clients(url: str) -> tuple[bool, bool]:
    key = 4242
    with (
        psycopg.connect(url, autocommit=True) as a,
        psycopg.connect(url, autocommit=True) as b,
    ):
        first = a.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        second = b.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        assert first is not None
        assert second is not None
        a.execute("SELECT pg_advisory_unlock_all()")
        b.execute("SELECT pg_advisory_unlock_all()")
        return bool(first[0]), bool(second[0])


@pytest.mark.postgres
@pytest.mark.parametrize(("mode", "second_gets_it"), [("session", False), ("transaction", True)])
def test_session_advisory_locks_exclude_each_other_only_in_session_mode(
    pg_url: str, pg_admin_url: str, bouncers: list[PgBouncer], mode: str, second_gets_it: bool
) -> None:
    """With one server connection shared in transaction mode, a second client "gets" the lock the
    first holds (it runs on the holder's session): DBOS's migration lock would exclude nothing."""
    bouncer = _bouncer(bouncers, pg_admin_url, mode, pool_size=1 if mode == "transaction" else 2)
    assert _try_lock_from_two_clients(bouncer.url(pg_url)) == (True, second_gets_it)


@pytest.mark.postgres
def test_psycopg_prepared_statements_collide_in_transaction_mode(
    pg_url: str, pg_admin_url: str, bouncers: list[PgBouncer]
) -> None:
    """psycopg prepares a statement server-side once it ran 5 times (prepare_threshold) under a
    name of its own; two clients sharing a server connection in transaction mode collide on it.
    PgBouncer 1.18 does not track prepared statements (1.21's max_prepared_statements does)."""
    bouncer = _bouncer(bouncers, pg_admin_url, "transaction", pool_size=1)
    url = bouncer.url(pg_url)
    with psycopg.connect(url) as a, psycopg.connect(url) as b:
        for i in range(5):  # below the threshold: nothing prepared yet
            for conn in (a, b):
                conn.execute("SELECT %s::int + 1", (i,)).fetchone()
                conn.commit()
        a.execute("SELECT %s::int + 1", (5,)).fetchone()  # prepares _pg3_0 on the shared server
        a.commit()
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            b.execute("SELECT %s::int + 1", (5,))


@pytest.mark.postgres
def test_the_same_statements_run_in_session_mode(
    pg_url: str, pg_admin_url: str, bouncers: list[PgBouncer]
) -> None:
    bouncer = _bouncer(bouncers, pg_admin_url, "session", pool_size=2)
    url = bouncer.url(pg_url)
    with psycopg.connect(url) as a, psycopg.connect(url) as b:
        for i in range(6):
            for conn in (a, b):
                assert conn.execute("SELECT %s::int + 1", (i,)).fetchone() == (i + 1,)
                conn.commit()


@pytest.mark.postgres
def test_libpq_options_are_refused_by_pgbouncer(
    pg_url: str, pg_admin_url: str, bouncers: list[PgBouncer]
) -> None:
    """Why DATABASE_POOLER exists at all: our direct engines send `-c statement_timeout=...` as a
    startup parameter, which PgBouncer 1.18 refuses; with the pooler they SET it on connect."""
    from services.common.sql import STATEMENT_TIMEOUT_MS, create_engine

    bouncer = _bouncer(bouncers, pg_admin_url, "session", pool_size=2)
    url = bouncer.url(pg_url)
    direct_style = create_engine(url)
    with pytest.raises(sa.exc.OperationalError, match="unsupported startup parameter: options"):
        direct_style.connect()
    direct_style.dispose()
    engine = create_engine(url, pooler="pgbouncer-session")
    try:
        with engine.connect() as conn:
            timeout = conn.execute(sa.text("SHOW statement_timeout")).scalar()
        assert timeout == f"{STATEMENT_TIMEOUT_MS // 1000}s"
        assert isinstance(engine.pool, sa.NullPool)
    finally:
        engine.dispose()
