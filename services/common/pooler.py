"""Connecting through PgBouncer in session mode (DATABASE_POOLER=pgbouncer-session).

Session mode is the only PgBouncer mode DBOS tolerates: DBOS's notification listener and our
wake-up listener LISTEN on a connection they keep for good, and DBOS's migrations hold a
session-level advisory lock across statements. Transaction mode hands each transaction to any
server connection, so a LISTEN stops hearing anything once its transaction ends and a session lock
is taken on one server connection and released (or leaked) on another; PgBouncer 1.18 also breaks
psycopg's server-side prepared statements there (tests/integration/test_pgbouncer.py shows both).

In session mode a server connection is held for a client connection's whole life, so a client-side
pool that keeps connections open would pin as many server connections as it holds. With the pooler
on, every engine here (ours, the API's DBOSClient's, DBOS's own in the worker) therefore uses
SQLAlchemy's NullPool: one short client session per checkout, and PgBouncer's pool bounds what
Postgres sees. PgBouncer 1.18 refuses unknown startup parameters (libpq `options`), so the
per-session settings we would send there are SET on connect instead (DISCARD ALL, PgBouncer's
session-mode server_reset_query, undoes them before the server connection serves another client).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

PGBOUNCER_SESSION = "pgbouncer-session"
# DATABASE_POOLER values: "" (connect to Postgres directly, with client-side pools) or
# PGBOUNCER_SESSION.
POOLERS = ("", PGBOUNCER_SESSION)
# Refused with a reason, since someone will try it (PgBouncer's most common mode).
UNSAFE_POOLERS = {
    "pgbouncer-transaction": "DBOS LISTENs for notifications and takes session-level advisory "
    "locks, which transaction pooling breaks; run PgBouncer with pool_mode=session",
    "pgbouncer-statement": "DBOS runs multi-statement transactions; run PgBouncer with "
    "pool_mode=session",
}


def set_on_connect(engine: sa.Engine, settings: dict[str, str]) -> None:
    """SET these on every new DBAPI connection (committed, so the pool's rollback on checkin
    cannot undo them): what libpq's `options` startup parameter does on a direct connection."""
    statements = [f"SET {name} = {value}" for name, value in settings.items()]

    @sa.event.listens_for(engine, "connect")
    def _apply(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        dbapi_conn.commit()


def dbos_engine_kwargs(pooler: str) -> dict[str, Any]:
    """db_engine_kwargs for DBOSConfig: NullPool behind the pooler (DBOS still sets its
    idle_in_transaction_session_timeout with a SET on connect, which PgBouncer passes through).
    Empty when connecting directly: DBOS's own pool, sized by sys_db_pool_size."""
    if pooler != PGBOUNCER_SESSION:
        return {}
    return {
        "poolclass": sa.NullPool,
        "connect_args": {"application_name": "dbos_transact", "connect_timeout": 10},
    }
