"""The queues this worker listens to: one per queue named in the workflow catalogue
(services/common/workflow_types.py), so declaring a type on a new queue is all it takes.

Every queue sets worker_concurrency: without it one worker claims the whole backlog in a single
poll, so extra replicas sit idle and a dead pod strands everything it claimed.
"""

from __future__ import annotations

from dbos import DBOS

from services.common.settings import Settings
from services.common.workflow_types import QUEUES


def register_queues(settings: Settings) -> None:
    """Call after DBOS.launch(): in dbos 3.4 queues live in the database, registered there."""
    for queue in QUEUES:
        DBOS.register_queue(
            queue,
            worker_concurrency=settings.worker_concurrency,
            polling_interval_sec=settings.worker_polling_interval_seconds,
            # Each release writes its own settings; an older replica still rolling out must not
            # overwrite them (DBOS's default conflict rule does exactly that).
            on_conflict="update_if_latest_version",
        )


def worker_limits(settings: Settings) -> dict[str, int]:
    """worker_concurrency by queue, as registered above: a NOTIFY does not wake a full queue."""
    return {queue: settings.worker_concurrency for queue in QUEUES}
