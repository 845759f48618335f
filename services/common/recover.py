"""`queue-worker recover`: re-enqueue a dead worker's PENDING workflows, by hand.

Workers recover dead peers of their own application version automatically, and on Kubernetes the
drainer starts workers of an older version that still has work. Orphans nobody runs (no recorded
image, drainer off) need a decision: run them on a worker of their version, or move them onto the
current version with --to-version, which is safe only if the workflow code is compatible with the
steps they already checkpointed.
"""

from __future__ import annotations

import logging

from services.common.executor_sql import ExecutorQueries, last_seen_age_sec
from services.common.logs import configure_logging
from services.common.settings import Settings
from services.common.sql import create_engine

log = logging.getLogger("queue_worker.recover")


def recover(settings: Settings, *, executor_id: str, to_version: str | None, force: bool) -> int:
    configure_logging(settings.log_level, settings.log_format, "recover")
    queries = ExecutorQueries(
        create_engine(settings.database_url, pool_size=1, pooler=settings.database_pooler)
    )
    try:
        age = last_seen_age_sec(queries, executor_id)
        if age is not None and age < settings.worker_dead_after_seconds and not force:
            log.error(
                "that worker is alive (fresh heartbeat); refusing without --force",
                extra={"executor_id": executor_id, "last_seen_sec_ago": round(age, 1)},
            )
            return 1
        n = queries.reenqueue(executor_id, to_version=to_version)
        queries.forget(executor_id)
    except Exception as exc:
        log.error("recovery failed", extra={"error": f"{type(exc).__name__}: {exc}"[:500]})
        return 1
    finally:
        queries.engine.dispose()
    log.info(
        "re-enqueued workflows",
        extra={"executor_id": executor_id, "workflows": n, "to_version": to_version},
    )
    return 0
