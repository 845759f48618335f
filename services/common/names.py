"""Names both services must agree on. The API enqueues by name and never imports worker code."""

from typing import Final

# DBOS application name: the worker's config name and the API client's application_name, so
# every row the API writes is owned by the application whose workers run it.
APP_NAME: Final = "queue-worker"

# The demo workflow (same names as the DBOS queue-worker example).
WORKFLOW_QUEUE: Final = "workflow-queue"
DEMO_WORKFLOW: Final = "workflow"
PROGRESS_EVENT: Final = "workflow_progress"

# The partition (tenant) key of work enqueued without one. The API writes a key on every enqueue:
# on a partitioned queue DBOS dequeues only rows that have one (a key-less row would wait
# forever), and a queue can become partitioned by a later configuration change.
DEFAULT_PARTITION_KEY: Final = "default"

# The workflow every schedule made through /api/schedules invokes: DBOS calls a scheduled workflow
# with (scheduled_at, context), so this one reads the declared type and input from the context and
# enqueues that type's workflow on its queue (services/worker/schedule_runner.py).
SCHEDULE_WORKFLOW: Final = "queue-worker.schedule"

# Every queue this application registers is the queue of a declared workflow type:
# services/common/workflow_types.py (QUEUES).

# Terminal and in-flight states, as DBOS writes them into workflow_status.status.
WORKFLOW_STATUSES: Final[tuple[str, ...]] = (
    "ENQUEUED",
    "DELAYED",
    "PENDING",
    "SUCCESS",
    "ERROR",
    "CANCELLED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
)
