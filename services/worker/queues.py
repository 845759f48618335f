"""The queues this worker listens to: one per queue named in the workflow catalogue
(services/common/workflow_types.py), so declaring a type on a new queue is all it takes.

Every queue sets worker_concurrency: without it one worker claims the whole backlog in a single
poll, so extra replicas sit idle and a dead pod strands everything it claimed.

Fairness (WORKER_PARTITION_CONCURRENCY, WORKER_RATE_LIMIT / WORKER_RATE_PERIOD_SECONDS) applies
to every queue. A per-key concurrency makes the queue partitioned in DBOS: it then dequeues only
rows with a queue_partition_key, which is why the API writes one on every enqueue ("default" when
the request names none). Both limits are stored in the queue's row, where the API's queue
metrics read them to tell runnable work from work a limit holds back.
"""

from __future__ import annotations

from dbos import DBOS

from services.common.settings import Settings
from services.common.workflow_types import QUEUES


def register_queues(settings: Settings) -> None:
    """Call after DBOS.launch(): in dbos 3.4 queues live in the database, registered there."""
    limit, period = settings.worker_rate_limit, settings.worker_rate_period_seconds
    for queue in QUEUES:
        DBOS.register_queue(
            queue,
            worker_concurrency=settings.worker_concurrency,
            partition_concurrency=settings.worker_partition_concurrency,
            # At most `limit` starts in any rolling `period` seconds, across all workers.
            limiter=None if limit is None else {"limit": limit, "period": period},
            polling_interval_sec=settings.worker_polling_interval_seconds,
            # Each release writes its own settings; an older replica still rolling out must not
            # overwrite them (DBOS's default conflict rule does exactly that).
            on_conflict="update_if_latest_version",
        )


def worker_limits(settings: Settings) -> dict[str, int]:
    """worker_concurrency by queue, as registered above: a NOTIFY does not wake a full queue."""
    return {queue: settings.worker_concurrency for queue in QUEUES}
