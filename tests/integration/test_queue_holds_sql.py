"""services/common/queue_holds_sql.py on both kinds of database: runnable vs held, per reason.

The queues are registered with DBOS's own client (so their limits sit in the row DBOS's dequeue
reads) and the rows are enqueued by it; "running" rows are made by marking rows PENDING the way
DBOS's claim does (status, started_at_epoch_ms, rate_limited), which is all the counts read.
tests/integration/test_fairness.py checks the same figures against a real worker.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from dbos import DBOSClient, WorkflowHandle

from services.common.sql import WorkflowQueries


def _enqueue(client: DBOSClient, queue: str, key: str | None, **options: object) -> str:
    opts: dict[str, object] = {"queue_name": queue, "workflow_name": "workflow", **options}
    if key is not None:
        opts["queue_partition_key"] = key
    handle: WorkflowHandle[None] = client.enqueue(opts, 1)  # type: ignore[arg-type]
    return handle.get_workflow_id()


def _start(q: WorkflowQueries, workflow_ids: list[str], *, rate_limited: bool = False) -> None:
    """Mark rows as a worker's claim does: PENDING, started now."""
    table = "dbos.workflow_status" if q.engine.dialect.name == "postgresql" else "workflow_status"
    with q.engine.begin() as conn:
        for workflow_id in workflow_ids:
            conn.execute(
                sa.text(
                    f"UPDATE {table} SET status = 'PENDING', started_at_epoch_ms = :now, "
                    "rate_limited = :rl WHERE workflow_uuid = :w"
                ),
                {"now": int(time.time() * 1000), "rl": rate_limited, "w": workflow_id},
            )


def _stats(q: WorkflowQueries, queue: str) -> tuple[int, int, dict[str, int]]:
    (s,) = [s for s in q.queue_stats(()) if s.name == queue]
    return s.enqueued, s.runnable, {k: v for k, v in s.held.items() if v}


def test_unlimited_queue_is_all_runnable(queries: WorkflowQueries, client: DBOSClient) -> None:
    client.register_queue("plain", worker_concurrency=1)
    for key in ("a", "a", None):
        _enqueue(client, "plain", key)
    _enqueue(client, "plain", "a", delay_seconds=600)
    # Per-worker concurrency is capacity another replica adds, not a hold.
    assert _stats(queries, "plain") == (3, 3, {"delayed": 1})


def test_partition_concurrency_holds_what_a_busy_key_cannot_start(
    queries: WorkflowQueries, client: DBOSClient
) -> None:
    client.register_queue("fair", partition_concurrency=2)
    a = [_enqueue(client, "fair", "tenant-a") for _ in range(5)]
    b = [_enqueue(client, "fair", "tenant-b") for _ in range(3)]
    _enqueue(client, "fair", None)  # a key-less row: a partitioned queue never dequeues it
    # Nothing runs: each key can start 2.
    assert _stats(queries, "fair") == (9, 4, {"partition_concurrency": 4, "no_partition_key": 1})
    _start(queries, a[:2])  # tenant-a is full; tenant-b still has room for 2 of its 3
    assert _stats(queries, "fair") == (7, 2, {"partition_concurrency": 4, "no_partition_key": 1})
    _start(queries, b[:1])
    assert _stats(queries, "fair") == (6, 1, {"partition_concurrency": 4, "no_partition_key": 1})


def test_rate_limit_holds_what_the_window_has_no_room_for(
    queries: WorkflowQueries, client: DBOSClient
) -> None:
    client.register_queue("rated", limiter={"limit": 3, "period": 60.0})
    ids = [_enqueue(client, "rated", "default") for _ in range(6)]
    assert _stats(queries, "rated") == (6, 3, {"rate_limit": 3})
    _start(queries, ids[:2], rate_limited=True)  # two starts used up in this window
    assert _stats(queries, "rated") == (4, 1, {"rate_limit": 3})
    _start(queries, ids[2:3], rate_limited=True)
    assert _stats(queries, "rated") == (3, 0, {"rate_limit": 3})


def test_limits_stack_in_order(queries: WorkflowQueries, client: DBOSClient) -> None:
    client.register_queue(
        "both", global_concurrency=3, partition_concurrency=2, limiter={"limit": 2, "period": 60.0}
    )
    for key in ("a", "a", "a", "b", "b", "c"):
        _enqueue(client, "both", key)
    # Per key: a 2 of 3, b 2, c 1 -> 5; queue-wide concurrency 3 -> 3; rate limit 2 -> 2.
    held = {"partition_concurrency": 1, "concurrency": 2, "rate_limit": 1}
    assert _stats(queries, "both") == (6, 2, held)
