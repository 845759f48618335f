"""The demo workflow from the DBOS queue-worker example: N steps, progress published after each.

Progress is published as the event PROGRESS_EVENT with the seed's shape
{"steps_completed": i, "num_steps": n}, in DBOS's portable JSON serialization so the API (and any
SQL client) can read it without unpickling.
"""

from __future__ import annotations

import logging
import time

from dbos import DBOS, WorkflowSerializationFormat

from services.common.names import DEMO_WORKFLOW, PROGRESS_EVENT
from services.worker.instrumentation import instrumented

log = logging.getLogger(__name__)


@DBOS.step()
def demo_step(index: int, step_seconds: float) -> int:
    """Stands in for real work: an I/O-bound step that takes step_seconds."""
    time.sleep(step_seconds)
    return index


def publish_progress(steps_completed: int, num_steps: int) -> None:
    DBOS.set_event(
        PROGRESS_EVENT,
        {"steps_completed": steps_completed, "num_steps": num_steps},
        serialization_type=WorkflowSerializationFormat.PORTABLE,
    )


@DBOS.workflow(name=DEMO_WORKFLOW)
@instrumented
def workflow(num_steps: int, step_seconds: float = 1.0) -> dict[str, int]:
    publish_progress(0, num_steps)
    for i in range(num_steps):
        demo_step(i, step_seconds)
        publish_progress(i + 1, num_steps)
    log.info("workflow finished", extra={"workflow_id": DBOS.workflow_id, "num_steps": num_steps})
    return {"steps_completed": num_steps, "num_steps": num_steps}
