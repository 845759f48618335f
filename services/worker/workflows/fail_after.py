"""A workflow that fails on purpose: `fail_after_steps` steps like the demo's, then an error.

For operations work: it ends in ERROR with a readable message, so alerts, dashboards, the
ERROR filter and (later) retry and fork have something real to act on. Declared as the
"fail-after" type in services/common/workflow_types.py; this module and that declaration are
all it took to add it.
"""

from __future__ import annotations

from dbos import DBOS

from services.common.workflow_types import FAIL_AFTER, catalogue
from services.worker.instrumentation import instrumented
from services.worker.workflows.demo import demo_step, publish_progress

WORKFLOW_NAME = catalogue().types[FAIL_AFTER].workflow_name


class IntendedFailure(RuntimeError):
    """Raised on purpose; its message says so, so nobody chases it as a bug."""


@DBOS.workflow(name=WORKFLOW_NAME)
@instrumented
def fail_after(num_steps: int, fail_after_steps: int, step_seconds: float = 1.0) -> None:
    publish_progress(0, num_steps)
    for i in range(min(fail_after_steps, num_steps)):
        demo_step(i, step_seconds)
        publish_progress(i + 1, num_steps)
    raise IntendedFailure(
        f"failed on purpose after {min(fail_after_steps, num_steps)} of {num_steps} steps"
    )
