"""Bulk-load realistic workflow rows with SQL (generate_series), for the list and metrics benches.

The shape of every column copies what a real worker and the API write (checked against a real
run of the demo workflow under dbos 3.4): `workflow_status` rows owned by the application
"queue-worker" on `workflow-queue`, created_at/started_at/completed_at in epoch milliseconds,
portable-JSON inputs in `workflow_input`, outputs in `workflow_output`, the attributes the API
stores (num_steps, queue, request_fingerprint), and the progress event
`{"steps_completed":k,"num_steps":n}` in `workflow_events` with serialization `portable_json`.

Rows are numbered by ordinal, 0 the newest, 100 ms apart. Ordinals below LIVE_HEAD make the live
head of the queue (ENQUEUED, without a progress event yet, then PENDING, part way through);
older ones are history: SUCCESS mostly, 2% ERROR, 1% CANCELLED (queue_name cleared, as DBOS
does on cancel). Growing 10k -> 100k -> 1M adds older history, so the head stays the same.

Not loaded: workflow_events_history and operation_outputs (about 2 x num_steps rows per workflow
in a real database). Nothing on the list or metrics path reads them; they would make the
database larger on disk than this one.
"""

from __future__ import annotations

import contextlib
import time

import psycopg

from bench.common import connect

ENQUEUED_HEAD = 200
PENDING_HEAD = 50
LIVE_HEAD = ENQUEUED_HEAD + PENDING_HEAD
SPACING_MS = 100

# One CTE computes every column once per ordinal; each table takes what it needs from it.
_ROWS = """
WITH g AS (
    SELECT i,
           md5('qw-bench-' || i)::uuid::text AS id,
           5 + (i %% 11) AS n,
           CASE
               WHEN i < %(enq)s THEN 'ENQUEUED'
               WHEN i < %(live)s THEN 'PENDING'
               WHEN i %% 100 < 2 THEN 'ERROR'
               WHEN i %% 100 < 3 THEN 'CANCELLED'
               ELSE 'SUCCESS'
           END AS status,
           %(base)s - i * %(spacing)s AS created
    FROM generate_series(%(lo)s, %(hi)s - 1) AS s(i)
), r AS (
    SELECT g.*,
           CASE WHEN status = 'ENQUEUED' THEN NULL ELSE created + 40 END AS started,
           CASE
               WHEN status IN ('SUCCESS', 'ERROR') THEN created + 40 + n * 1000 + 25
               ELSE NULL
           END AS completed,
           CASE
               WHEN status = 'SUCCESS' THEN n
               WHEN status = 'ENQUEUED' THEN NULL
               ELSE i %% n
           END AS done
    FROM g
)
"""

_STATUS = (
    _ROWS
    + """
INSERT INTO dbos.workflow_status (
    workflow_uuid, status, name, executor_id, created_at, updated_at, application_version,
    recovery_attempts, queue_name, started_at_epoch_ms, priority, owner_xid, serialization,
    completed_at, attributes, application_name, creator_xid)
SELECT id, status, 'workflow',
       CASE WHEN status = 'ENQUEUED' THEN NULL ELSE 'queue-worker-worker-' || (i %% 4) END,
       created, coalesce(completed, started, created),
       CASE WHEN status = 'ENQUEUED' THEN NULL ELSE '0.1.0' END,
       CASE WHEN status = 'ENQUEUED' THEN 0 ELSE 1 END,
       CASE WHEN status = 'CANCELLED' THEN NULL ELSE 'workflow-queue' END,
       started, 0,
       CASE WHEN status = 'PENDING' THEN md5('owner-' || i)::uuid::text ELSE NULL END,
       'portable_json', completed,
       jsonb_build_object('num_steps', n, 'queue', 'workflow-queue',
                          'request_fingerprint', substr(md5('fp-' || i), 1, 32)),
       'queue-worker', md5('creator-' || i)::uuid::text
FROM r
"""
)

_INPUT = (
    _ROWS
    + """
INSERT INTO dbos.workflow_input (workflow_uuid, inputs, retention_timestamp)
SELECT id, '{"namedArgs":{},"positionalArgs":[' || n || ',1.0]}', created FROM r
"""
)

_OUTPUT = (
    _ROWS
    + """
INSERT INTO dbos.workflow_output (workflow_uuid, output, error, retention_timestamp)
SELECT id,
       CASE WHEN status = 'SUCCESS'
            THEN '{"steps_completed":' || n || ',"num_steps":' || n || '}' END,
       CASE WHEN status = 'ERROR'
            THEN '{"name":"RuntimeError","message":"step ' || done || ' failed"}' END,
       completed
FROM r WHERE status IN ('SUCCESS', 'ERROR')
"""
)

_EVENTS = (
    _ROWS
    + """
INSERT INTO dbos.workflow_events (workflow_uuid, key, value, serialization)
SELECT id, 'workflow_progress',
       '{"steps_completed":' || done || ',"num_steps":' || n || '}', 'portable_json'
FROM r WHERE status <> 'ENQUEUED'
"""
)


def now_ms() -> int:
    return int(time.time() * 1000)


def seed_workflows(url: str, *, lo: int, hi: int, base_ms: int) -> float:
    """Insert ordinals lo..hi-1 (0 is the newest, created at base_ms); returns seconds taken."""
    params = {
        "enq": ENQUEUED_HEAD,
        "live": LIVE_HEAD,
        "base": base_ms,
        "spacing": SPACING_MS,
        "lo": lo,
        "hi": hi,
    }
    started = time.monotonic()
    with connect(url) as conn:
        # A bulk load, not an application write: skip the per-commit flush.
        conn.execute("SET synchronous_commit = off")
        for sql in (_STATUS, _INPUT, _OUTPUT, _EVENTS):
            conn.execute(sql, params)
        conn.commit()
    with connect(url, autocommit=True) as conn:
        # Autovacuum would get there on a live system; without it the visibility map is empty
        # and every index-only scan turns into heap reads.
        for table in ("workflow_status", "workflow_events", "workflow_input", "workflow_output"):
            conn.execute(f"VACUUM (ANALYZE) dbos.{table}")
        # Write the load's dirty pages out now rather than during the measurements after it.
        # Needs a superuser; without one the checkpointer gets there on its own.
        with contextlib.suppress(psycopg.Error):
            conn.execute("CHECKPOINT")
    return time.monotonic() - started


def count_by_status(url: str) -> dict[str, int]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM dbos.workflow_status GROUP BY status"
        ).fetchall()
    return {str(s): int(n) for s, n in rows}
