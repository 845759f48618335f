"""The enqueue trigger: a Postgres NOTIFY whenever a workflow row becomes ENQUEUED on a queue.

Workers LISTEN on WAKE_CHANNEL (services/worker/listener.py) and wake their DBOS queue thread at
once instead of at its next poll. The trigger sits on dbos.workflow_status rather than in the API,
so every way a row becomes ENQUEUED wakes workers: the API, a DBOSClient anywhere else, DBOS's own
enqueue function for other languages, a resume, a DELAYED row coming due, our hand-back and
recovery sweep. The payload is the queue name; a worker rings only the queues it runs.

NOTIFY is sent at commit, so a woken worker always finds the row. Postgres serializes the commits
of transactions that sent a NOTIFY (one global queue lock), which is the enqueue cost the bench
measures (bench/wake.py). Postgres only: SQLite keeps the polling timer.

The function lives in our own schema `queue_worker` (DBOS's migrations own the `dbos` schema);
the trigger names carry a version so a changed definition is a new trigger, and installing never
drops anything (no ACCESS EXCLUSIVE lock on the hot table at each release).
"""

from __future__ import annotations

import sqlalchemy as sa

WAKE_CHANNEL = "queue_worker_wake"
TRIGGER_INSERT = "queue_worker_wake_insert_v1"
TRIGGER_UPDATE = "queue_worker_wake_update_v1"

# Serializes installers (workers that run migrations may start together); any fixed 64-bit key.
_INSTALL_LOCK_KEY = 0x71_77_5F_77_61_6B  # "qw_wak"

# An INSERT skips its NOTIFY when the head of its queue (the next row a worker would claim) is of
# the same version and was enqueued more than SATURATED_MS before the new row: that queue's
# workers are all busy (they poll as each workflow ends) or cannot take it (the timer covers), so a
# NOTIFY would wake nobody with a free slot. This matters because Postgres serializes the commits
# of notifying transactions (including their WAL flush): under a backlog, enqueues stop paying for
# that (bench/wake.py measures both). The head is a top-1 probe of DBOS's
# idx_workflow_status_in_flight_v2 with no other filter, so the plan stays an index probe whatever
# the statistics say (a version filter inside it made the generic plan a sequential scan once the
# table grew); a head of another version just means "notify". created_at is compared with the new
# row's own, so both come from one clock (the database's default, or a batch client's). A
# re-enqueue (UPDATE: resume, hand-back, recovery, a delayed row coming due) always notifies: it is
# rare, and re-enqueued rows keep their old created_at.
SATURATED_MS = 1000
HEAD_PROBE = (
    "SELECT created_at, application_version FROM dbos.workflow_status"
    " WHERE queue_name = {queue} AND status = 'ENQUEUED' ORDER BY priority, created_at LIMIT 1"
)

_FUNCTION = f"""
CREATE OR REPLACE FUNCTION queue_worker.notify_enqueued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND EXISTS (
        SELECT 1 FROM ({HEAD_PROBE.format(queue="NEW.queue_name")}) AS head
        WHERE head.created_at < NEW.created_at - {SATURATED_MS}
          AND head.application_version IS NOT DISTINCT FROM NEW.application_version
    ) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('{WAKE_CHANNEL}', NEW.queue_name);
    RETURN NULL;
END
$$
"""

# The WHEN clauses run without calling the function, so the writes that do not enqueue (claims,
# step outputs, completions) pay almost nothing. UPDATE OF status: only statements that set it.
_TRIGGERS = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{TRIGGER_INSERT}'
                   AND tgrelid = 'dbos.workflow_status'::regclass) THEN
        CREATE TRIGGER {TRIGGER_INSERT} AFTER INSERT ON dbos.workflow_status
        FOR EACH ROW WHEN (NEW.status = 'ENQUEUED' AND NEW.queue_name IS NOT NULL)
        EXECUTE FUNCTION queue_worker.notify_enqueued();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{TRIGGER_UPDATE}'
                   AND tgrelid = 'dbos.workflow_status'::regclass) THEN
        CREATE TRIGGER {TRIGGER_UPDATE} AFTER UPDATE OF status ON dbos.workflow_status
        FOR EACH ROW WHEN (NEW.status = 'ENQUEUED' AND OLD.status <> 'ENQUEUED'
                           AND NEW.queue_name IS NOT NULL)
        EXECUTE FUNCTION queue_worker.notify_enqueued();
    END IF;
END
$$
"""

_INSTALLED = """
SELECT count(*) FROM pg_trigger
WHERE tgrelid = to_regclass('dbos.workflow_status') AND tgname IN (:insert, :update)
  AND NOT tgisinternal AND tgenabled <> 'D'
"""


def install_wake_trigger(engine: sa.Engine) -> bool:
    """Create the triggers if missing (idempotent). Needs DBOS's schema and ours (create_schema).
    Returns False on SQLite, where there is nothing to install."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INSTALL_LOCK_KEY})
        conn.execute(sa.text(_FUNCTION))
        conn.execute(sa.text(_TRIGGERS))
    return True


def wake_trigger_installed(engine: sa.Engine) -> bool:
    """Both triggers exist and are enabled (a worker warns when not: it then only polls)."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        n = conn.execute(
            sa.text(_INSTALLED), {"insert": TRIGGER_INSERT, "update": TRIGGER_UPDATE}
        ).scalar()
    return n == 2
