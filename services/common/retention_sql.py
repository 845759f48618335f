"""Retention: delete finished workflows older than a maximum age, in bounded batches.

DBOS 3.4 has no retention setting of its own (its `delete_workflows(ids)` deletes by id, with no
check of the status at the moment of deletion), so this is SQL over the dbos schema, written for
Postgres and SQLite like the rest of services/common:

- Only finished rows: SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED, whose
  `completed_at` (DBOS stamps it on each of those) is older than the cutoff. ENQUEUED, DELAYED and
  PENDING rows are never selected, and the DELETE repeats the status and age test, so a workflow
  resumed between the SELECT and the DELETE is left alone (on Postgres the DELETE re-checks the
  row after any concurrent update). A finished child whose parent is still running is kept, as
  the parent may still read its result.
- A batch is selected through DBOS's partial index idx_workflow_status_completed_at, oldest
  first, so each batch costs an index range scan, not a table scan.
- One transaction per batch deletes the status rows and every row keyed by their ids: DBOS's
  payload tables have no foreign key (workflow_input, workflow_output, operation_outputs), and
  SQLite connections here do not enforce the ones that exist (events, streams, notifications).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

FINISHED_STATUSES: tuple[str, ...] = (
    "SUCCESS",
    "ERROR",
    "CANCELLED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
)

# Postgres advisory lock key for "one retention pass at a time" (next to the sweep's keys).
RETENTION_LOCK_KEY = 0x71_77_5F_72_65_74  # "qw_ret"

_OLD_AND_FINISHED = """
ws.status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
AND ws.completed_at < :cutoff
AND NOT EXISTS (
    SELECT 1 FROM {s}workflow_status parent
    WHERE parent.workflow_uuid = ws.parent_workflow_id
      AND parent.status IN ('ENQUEUED', 'DELAYED', 'PENDING')
)
"""

_SELECT_BATCH = """
SELECT ws.workflow_uuid FROM {s}workflow_status ws
WHERE {old}
ORDER BY ws.completed_at
LIMIT :batch
"""

# The conditions are on the deleted row itself, so Postgres re-checks them against a row that a
# concurrent transaction (a resume) changed before this DELETE took its lock.
_DELETE_STATUS = """
DELETE FROM {s}workflow_status AS ws
WHERE ws.workflow_uuid IN :ids AND {old}
RETURNING workflow_uuid
"""

# (table, the column holding the workflow id); deleted after the status rows, for the ids deleted.
_CHILD_TABLES = (
    ("workflow_input", "workflow_uuid"),
    ("workflow_output", "workflow_uuid"),
    ("operation_outputs", "workflow_uuid"),
    ("workflow_events", "workflow_uuid"),
    ("workflow_events_history", "workflow_uuid"),
    ("streams", "workflow_uuid"),
    ("notifications", "destination_uuid"),
)


@dataclass(frozen=True)
class RetentionPass:
    deleted: int
    batches: int
    # False if another process held the lock (Postgres), so this one did nothing.
    ran: bool = True
    # True if it stopped at max_batches with more old rows left.
    more: bool = False


class RetentionQueries:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._schema = "dbos." if self.is_postgres else ""

    def _sql(self, template: str) -> str:
        return template.format(s=self._schema, old=_OLD_AND_FINISHED.format(s=self._schema))

    def delete_batch(self, conn: sa.Connection, cutoff_ms: int, batch: int) -> int:
        """One batch in the caller's transaction; returns how many workflows it deleted."""
        ids = [
            r[0]
            for r in conn.execute(
                sa.text(self._sql(_SELECT_BATCH)), {"cutoff": cutoff_ms, "batch": batch}
            )
        ]
        if not ids:
            return 0
        expanding: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
        deleted = [
            r[0]
            for r in conn.execute(
                sa.text(self._sql(_DELETE_STATUS)).bindparams(expanding),
                {"ids": ids, "cutoff": cutoff_ms},
            )
        ]
        if deleted:
            for table, column in _CHILD_TABLES:
                stmt = sa.text(
                    f"DELETE FROM {self._schema}{table} WHERE {column} IN :ids"
                ).bindparams(sa.bindparam("ids", expanding=True))
                conn.execute(stmt, {"ids": deleted})
        return len(deleted)

    def run(self, cutoff_ms: int, *, batch: int, max_batches: int) -> RetentionPass:
        """Delete old finished workflows, a batch per transaction, until none is left or
        max_batches ran. On Postgres only one process at a time runs a pass (advisory lock)."""
        with self.engine.connect() as conn:
            if self.is_postgres:
                got = conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": RETENTION_LOCK_KEY}
                ).scalar_one()
                conn.commit()
                if not got:
                    return RetentionPass(0, 0, ran=False)
            try:
                total = batches = 0
                while batches < max_batches:
                    with conn.begin():
                        n = self.delete_batch(conn, cutoff_ms, batch)
                    batches += 1
                    total += n
                    if n < batch:
                        return RetentionPass(total, batches)
                return RetentionPass(total, batches, more=True)
            finally:
                if self.is_postgres:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": RETENTION_LOCK_KEY}
                    )
                    conn.commit()
