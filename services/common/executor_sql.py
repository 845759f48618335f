"""SQL for worker liveness: heartbeats, dead-executor detection, hand-back and orphan recovery.

Companion of sql.py (the API's reads). Open-source DBOS only recovers PENDING workflows of the
executor id that starts up again; a pod that dies and never returns would strand its work. So every
worker keeps a heartbeat row in our own table (schema `queue_worker` on Postgres, a prefixed table
on SQLite; never inside DBOS's schema, whose migrations we do not own), and a sweep finds the
PENDING workflows of executors whose heartbeat went stale.

Times are taken from the database's clock, so skew between pods cannot make a live worker look dead.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

# DBOS's queue for workflows that were not enqueued (e.g. started directly); recovery falls back
# to it exactly as dbos's own reenqueue_for_recovery does.
INTERNAL_QUEUE = "_dbos_internal_queue"

# Postgres advisory lock key for "one recovery sweep at a time" (any fixed 64-bit number).
SWEEP_LOCK_KEY = 0x71_77_5F_72_65_63  # "qw_rec"

_NOW_MS = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
}

_CREATE = [
    """
    CREATE TABLE IF NOT EXISTS {t}executors (
        executor_id TEXT PRIMARY KEY,
        app_version TEXT NOT NULL,
        hostname TEXT NOT NULL,
        pid INTEGER NOT NULL,
        state TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        last_seen BIGINT NOT NULL
    )
    """,
    # One row per application version a worker ever ran: the image that runs it, so the drainer
    # (services/drain/) can start workers of an old version until its backlog is done.
    """
    CREATE TABLE IF NOT EXISTS {t}versions (
        app_version TEXT PRIMARY KEY,
        image TEXT,
        pinned INTEGER NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL
    )
    """,
]

_HEARTBEAT = """
INSERT INTO {t}executors (executor_id, app_version, hostname, pid, state, started_at, last_seen)
VALUES (:executor_id, :app_version, :hostname, :pid, :state, {now}, {now})
ON CONFLICT (executor_id) DO UPDATE SET
    app_version = excluded.app_version, hostname = excluded.hostname, pid = excluded.pid,
    state = excluded.state, last_seen = excluded.last_seen
"""

_FORGET = "DELETE FROM {t}executors WHERE executor_id = :executor_id"

# PENDING work whose executor has no fresh heartbeat (dead, or never heartbeated), by version.
# PENDING rows are few and covered by idx_workflow_status_pending.
_DEAD_PENDING = """
SELECT ws.executor_id, ws.application_version, count(*) AS n
FROM {s}workflow_status ws
LEFT JOIN {t}executors ex ON ex.executor_id = ws.executor_id
WHERE ws.status = 'PENDING' AND ws.executor_id IS NOT NULL AND ws.executor_id <> :me
  AND (ex.executor_id IS NULL OR ex.last_seen < {now} - :dead_after_ms)
GROUP BY ws.executor_id, ws.application_version
"""

# Mirrors dbos's reenqueue_for_recovery: back to ENQUEUED on its own queue, so the queue's atomic
# ENQUEUED -> PENDING claim admits exactly one new runner, and steps already checkpointed are
# replayed rather than re-run. `to_version` (operator command only) moves orphans of a retired
# version onto the current one.
_REENQUEUE = """
UPDATE {s}workflow_status
SET status = 'ENQUEUED', owner_xid = NULL, started_at_epoch_ms = NULL, updated_at = {now},
    queue_name = COALESCE(queue_name, :internal_queue),
    application_version = COALESCE(CAST(:to_version AS TEXT), application_version)
WHERE status = 'PENDING' AND executor_id = :executor_id
  AND (CAST(:app_version AS TEXT) IS NULL OR application_version = CAST(:app_version AS TEXT))
"""


@dataclass(frozen=True)
class DeadExecutorWork:
    executor_id: str
    app_version: str | None
    pending: int


def schema_parts(engine: sa.Engine) -> dict[str, str]:
    """Fill-ins of the SQL templates here and in versions_sql.py: {s} DBOS's schema, {t} ours,
    {now} the database clock in epoch milliseconds."""
    dialect = engine.dialect.name
    postgres = dialect == "postgresql"
    return {
        "s": "dbos." if postgres else "",
        "t": "queue_worker." if postgres else "queue_worker_",
        "now": _NOW_MS[dialect],
    }


class ExecutorQueries:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._parts = schema_parts(engine)

    def _sql(self, template: str) -> sa.TextClause:
        return sa.text(template.format(**self._parts))

    def create_schema(self) -> None:
        """Idempotent; run by `queue-worker migrate` and by a worker that runs migrations."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                # IF NOT EXISTS is not atomic: workers starting together on a fresh database
                # would race to create the schema (UniqueViolation). Serialize them.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY + 1}
                )
                conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS queue_worker"))
            for ddl in _CREATE:
                conn.execute(self._sql(ddl))

    def schema_ready(self) -> bool:
        """Whether `queue-worker migrate` has run: DBOS's tables and ours both exist."""
        try:
            with self.engine.connect() as conn:
                conn.execute(self._sql("SELECT 1 FROM {s}workflow_status LIMIT 0"))
                conn.execute(self._sql("SELECT 1 FROM {t}executors LIMIT 0"))
        except sa.exc.DBAPIError:
            return False
        return True

    def grant(self, role: str) -> None:
        """Give the runtime role what it needs on our schema (Postgres; `migrate --app-role`)."""
        quoted = self.engine.dialect.identifier_preparer.quote(role)
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"GRANT USAGE ON SCHEMA queue_worker TO {quoted}"))
            conn.execute(
                sa.text(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA queue_worker "
                    f"TO {quoted}"
                )
            )

    def heartbeat(
        self, *, executor_id: str, app_version: str, hostname: str, pid: int, state: str
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self._sql(_HEARTBEAT),
                {
                    "executor_id": executor_id,
                    "app_version": app_version,
                    "hostname": hostname,
                    "pid": pid,
                    "state": state,
                },
            )

    def forget(self, executor_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._sql(_FORGET), {"executor_id": executor_id})

    def dead_executor_work(self, *, me: str, dead_after_sec: float) -> list[DeadExecutorWork]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._sql(_DEAD_PENDING), {"me": me, "dead_after_ms": int(dead_after_sec * 1000)}
            ).all()
        return [DeadExecutorWork(r.executor_id, r.application_version, int(r.n)) for r in rows]

    def try_sweep_lock(self, conn: sa.Connection) -> bool:
        """Inside a transaction: True if this process may sweep now (held until it commits)."""
        if not self.is_postgres:
            return True  # SQLite is one machine; recovery is idempotent anyway
        got = conn.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY}
        ).scalar_one()
        return bool(got)

    def reenqueue(
        self,
        executor_id: str,
        *,
        app_version: str | None = None,
        to_version: str | None = None,
    ) -> int:
        """Hand the executor's PENDING workflows back to their queues; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                self._sql(_REENQUEUE),
                {
                    "executor_id": executor_id,
                    "app_version": app_version,
                    "to_version": to_version,
                    "internal_queue": INTERNAL_QUEUE,
                },
            )
        return int(result.rowcount)


_LAST_SEEN_AGE = "SELECT {now} - last_seen FROM {t}executors WHERE executor_id = :executor_id"


def last_seen_age_sec(queries: ExecutorQueries, executor_id: str) -> float | None:
    """Seconds since the executor's last heartbeat, by the database clock; None if it has none."""
    with queries.engine.connect() as conn:
        age = conn.execute(queries._sql(_LAST_SEEN_AGE), {"executor_id": executor_id}).scalar()
    return None if age is None else float(age) / 1000.0
