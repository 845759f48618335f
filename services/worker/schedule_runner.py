"""The workflow behind every schedule made through /api/schedules.

DBOS 3.4's scheduler (a thread per schedule in every worker, started by DBOS.launch()) enqueues
one "firing" per cron time on DBOS's internal queue, with a deterministic id
(sched-{name}-{time}), so replicas firing the same time make one workflow. A firing calls the
scheduled workflow as fn(scheduled_at, context), which fits no declared type's signature: this
runner takes the type and input from the context (services/common/schedule_context.py) and
enqueues that type's workflow on the type's own queue, exactly like an API enqueue, so the run
obeys the queue's worker_concurrency and shows in /api/workflows like any other. The enqueue is
recorded as the firing's child, so a recovered firing never enqueues twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from dbos import DBOS, EnqueueOptions, WorkflowSerializationFormat

from services.common.names import DEFAULT_PARTITION_KEY, SCHEDULE_WORKFLOW
from services.common.schedule_context import read_context, run_workflow_id
from services.common.workflow_types import catalogue

log = logging.getLogger(__name__)


class UnknownScheduleTarget(RuntimeError):
    """The schedule names a type this worker does not declare (or a context it cannot read)."""


@DBOS.workflow(name=SCHEDULE_WORKFLOW)
def run_schedule(scheduled_at: datetime, context: Any) -> str:
    target = read_context(context)
    wtype = catalogue().get(target[0]) if target is not None else None
    if target is None or wtype is None:
        raise UnknownScheduleTarget(
            f"schedule context names no declared workflow type: {context!r}"
        )
    workflow_id = run_workflow_id(DBOS.workflow_id or "")
    attributes: dict[str, Any] = {"queue": wtype.queue, "scheduled_at": scheduled_at.isoformat()}
    num_steps = target[1].get("num_steps")
    if isinstance(num_steps, int):
        attributes["num_steps"] = num_steps  # so the list shows "0 of N" before the first step
    options: EnqueueOptions = {
        "queue_name": wtype.queue,
        "workflow_name": wtype.workflow_name,
        "workflow_id": workflow_id,
        "serialization_type": WorkflowSerializationFormat.PORTABLE,
        "attributes": attributes,
        # Like every API enqueue: a partitioned queue (WORKER_PARTITION_CONCURRENCY) never
        # dequeues a row without a key.
        "queue_partition_key": DEFAULT_PARTITION_KEY,
    }
    DBOS.enqueue_workflow_with_options(options, **target[1])
    log.info(
        "schedule fired",
        extra={"workflow_id": workflow_id, "type": wtype.name, "scheduled_at": str(scheduled_at)},
    )
    return workflow_id
