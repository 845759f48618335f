"""`queue-worker migrate`: create or upgrade the schema (Postgres or SQLite).

Three parts: DBOS's system schema (DBOS.migrate, the pinned version's migrations), this project's
own small table of worker heartbeats (services/common/executor_sql.py), and on Postgres the enqueue
trigger that wakes workers (services/common/wake_sql.py). All are idempotent.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import sqlalchemy as sa
from dbos import DBOS

from services.common.executor_sql import ExecutorQueries
from services.common.logs import configure_logging
from services.common.settings import Settings
from services.common.sql import create_engine
from services.common.wake_sql import install_wake_trigger

log = logging.getLogger("queue_worker.migrate")


def migrate_schema(database_url: str, *, app_role: str | None = None) -> None:
    DBOS.migrate(database_url, application_role=app_role)
    executors = ExecutorQueries(create_engine(database_url, pool_size=1))
    try:
        executors.create_schema()
        # After DBOS's migrations: the trigger is on dbos.workflow_status.
        install_wake_trigger(executors.engine)
        if app_role is not None:
            executors.grant(app_role)
    finally:
        executors.engine.dispose()


def migrate(settings: Settings, *, app_role: str | None = None) -> int:
    configure_logging(settings.log_level, settings.log_format, "migrate")
    if settings.log_level != "debug":
        # DBOS logs one line per migration step (over 60 on a fresh database).
        logging.getLogger("dbos").setLevel(logging.WARNING)
    if settings.database_pooler:
        # DDL, CREATE DATABASE on the `postgres` database and DBOS's session advisory lock are the
        # database owner's business: migrations connect to Postgres itself, never via PgBouncer.
        log.error(
            "queue-worker migrate connects to Postgres directly: unset DATABASE_POOLER and give it "
            "the server's own URL (the chart's migrations.existingSecret)"
        )
        return 2
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        parent = Path(url.database).expanduser().resolve().parent
        if not parent.is_dir():
            log.error("the SQLite file's directory does not exist", extra={"dir": str(parent)})
            return 1
    if app_role is not None and settings.is_sqlite:
        log.error("--app-role applies to Postgres only")
        return 2
    started = time.monotonic()
    log.info("migrating", extra={"database": settings.redacted_database_url, "app_role": app_role})
    try:
        migrate_schema(settings.database_url, app_role=app_role)
    except Exception as exc:
        log.error("migration failed", extra={"error": f"{type(exc).__name__}: {exc}"[:500]})
        return 1
    log.info("schema is up to date", extra={"seconds": round(time.monotonic() - started, 2)})
    return 0
