"""How much of each queue's backlog a worker could start now, and what holds back the rest.

The autoscaling signal must count only runnable work: a replica added for work that a per-key
concurrency or a rate limit holds back would sit idle. The limits are read from the queue's own
row (`dbos.queues`, written by the workers' DBOS.register_queue), so the API needs no copy of the
workers' configuration; the counts mirror the checks of DBOS 3.4's dequeue
(SystemDatabase.start_queued_workflows in dbos/_sys_db.py):

- partition_concurrency: per partition key, at most `partition_concurrency - PENDING of that key`
  of its ENQUEUED rows can start. A partitioned queue never dequeues a row without a key
  (`no_partition_key`).
- concurrency (a queue-wide limit across workers): at most `concurrency - PENDING` can start.
- the queue's limiter: at most `rate_limit_max` workflows start in any rolling
  `rate_limit_period_sec`; the rows that started inside the window use it up.
Each limit caps what the previous ones left, and what it removes is counted under its reason.
DELAYED workflows (a delay_seconds not yet due) are not in the ENQUEUED backlog; they are
reported beside it under `delayed`.

Per-worker concurrency is not a hold: another replica adds exactly that capacity.
Plain SQL for Postgres and SQLite; only the schema prefix differs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

# Reasons, as exported in queue_worker_queue_held{queue,reason} and GET /api/queues.
HOLD_REASONS: tuple[str, ...] = (
    "partition_concurrency",
    "no_partition_key",
    "concurrency",
    "rate_limit",
    "delayed",
)

_LIMITS = """
SELECT name, concurrency, partition_concurrency, rate_limit_max, rate_limit_period_sec
FROM {s}queues
"""

# One row per partitioned queue: how many ENQUEUED rows fit under the per-key limit, summed over
# its keys. The inner grouping rides idx_workflow_status_partition_dequeue_v3 / in_flight_v2.
_PARTITION_ROOM = """
SELECT p.queue_name,
    sum(CASE
        WHEN p.k IS NULL THEN 0
        WHEN p.enq <= q.partition_concurrency - p.pend THEN p.enq
        WHEN q.partition_concurrency > p.pend THEN q.partition_concurrency - p.pend
        ELSE 0 END) AS runnable,
    sum(CASE WHEN p.k IS NULL THEN p.enq ELSE 0 END) AS keyless
FROM (
    SELECT queue_name, queue_partition_key AS k,
        sum(CASE WHEN status = 'ENQUEUED' THEN 1 ELSE 0 END) AS enq,
        sum(CASE WHEN status = 'PENDING' THEN 1 ELSE 0 END) AS pend
    FROM {s}workflow_status
    WHERE status IN ('ENQUEUED', 'PENDING')
        AND queue_name IN (SELECT name FROM {s}queues WHERE partition_concurrency IS NOT NULL)
    GROUP BY queue_name, queue_partition_key
) p
JOIN {s}queues q ON q.name = p.queue_name
GROUP BY p.queue_name
"""

# Starts inside each rate-limited queue's window: DBOS's own count (rate_limited rows that left
# ENQUEUED/DELAYED and started within the period).
_RATE_WINDOW = """
SELECT q.name, count(ws.workflow_uuid) AS started
FROM {s}queues q
JOIN {s}workflow_status ws ON ws.queue_name = q.name
WHERE q.rate_limit_max IS NOT NULL
    AND ws.rate_limited = TRUE
    AND ws.status NOT IN ('ENQUEUED', 'DELAYED')
    AND ws.started_at_epoch_ms > :now_ms - q.rate_limit_period_sec * 1000
GROUP BY q.name
"""

_DELAYED = """
SELECT queue_name, count(*) AS n FROM {s}workflow_status
WHERE status = 'DELAYED' AND queue_name IS NOT NULL
GROUP BY queue_name
"""


@dataclass(frozen=True)
class QueueHolds:
    runnable: int
    # Every reason of HOLD_REASONS, zeros included.
    held: Mapping[str, int]


def queue_holds(
    conn: sa.Connection,
    schema: str,
    counts: Mapping[str, tuple[int, int]],
    now_ms: int | None = None,
) -> dict[str, QueueHolds]:
    """Holds for every queue in `counts` ({queue: (ENQUEUED, PENDING)}); `schema` is "dbos." on
    Postgres, "" on SQLite."""

    def rows(template: str, **params: int) -> list[sa.Row[tuple[object, ...]]]:
        return list(conn.execute(sa.text(template.format(s=schema)), params))

    limits = {r.name: r for r in rows(_LIMITS)}
    partitioned = any(r.partition_concurrency is not None for r in limits.values())
    rated = any(r.rate_limit_max is not None for r in limits.values())
    room = (
        {r.queue_name: (int(r.runnable), int(r.keyless)) for r in rows(_PARTITION_ROOM)}
        if (partitioned)
        else {}
    )
    now = int(time.time() * 1000) if now_ms is None else now_ms
    started = {r.name: int(r.started) for r in rows(_RATE_WINDOW, now_ms=now)} if rated else {}
    delayed = {r.queue_name: int(r.n) for r in rows(_DELAYED)}
    out = {}
    for name in sorted(set(counts) | set(delayed)):
        enqueued, pending = counts.get(name, (0, 0))
        held = dict.fromkeys(HOLD_REASONS, 0)
        held["delayed"] = delayed.get(name, 0)
        runnable = enqueued
        limit = limits.get(name)
        if limit is not None and limit.partition_concurrency is not None:
            fits, keyless = room.get(name, (0, 0))
            # Separate statements can see a row move between them: keep the parts consistent.
            keyless = min(keyless, enqueued)
            fits = min(fits, enqueued - keyless)
            held["no_partition_key"] = keyless
            held["partition_concurrency"] = enqueued - keyless - fits
            runnable = fits
        if limit is not None and limit.concurrency is not None:
            fits = min(runnable, max(0, int(limit.concurrency) - pending))
            held["concurrency"] = runnable - fits
            runnable = fits
        if limit is not None and limit.rate_limit_max is not None:
            fits = min(runnable, max(0, int(limit.rate_limit_max) - started.get(name, 0)))
            held["rate_limit"] = runnable - fits
            runnable = fits
        out[name] = QueueHolds(runnable=runnable, held=held)
    return out
