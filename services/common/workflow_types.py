"""Every workflow the API can enqueue, declared once: name, queue, description, input schema.

Both services read this module: the API validates requests, lists the types
(GET /api/workflow-types), serves POST /api/workflows/{type} and generates /openapi.json from it;
the worker registers the queues named here and refuses to start unless it runs a DBOS workflow
for every type (services/worker/workflows/). This module holds plain data only, so the API never
imports worker code.

To add a workflow: write its module under services/worker/workflows/ (imported automatically),
and add its declaration to `_declare` below. That line is its whole registration.
"""

from __future__ import annotations

from services.common.catalogue import Catalogue, WorkflowType
from services.common.names import DEMO_WORKFLOW, WORKFLOW_QUEUE

MAX_STEP_SECONDS = 60.0
DEFAULT_MAX_NUM_STEPS = 1000

DEMO = "demo"
FAIL_AFTER = "fail-after"


def _steps(max_num_steps: int, default_step_seconds: float) -> dict[str, object]:
    return {
        "num_steps": {"type": "integer", "minimum": 1, "maximum": max_num_steps},
        "step_seconds": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_STEP_SECONDS,
            "default": default_step_seconds,
            "description": "Seconds per step.",
        },
    }


def _declare(max_num_steps: int, default_step_seconds: float) -> list[WorkflowType]:
    steps = _steps(max_num_steps, default_step_seconds)
    return [
        WorkflowType(
            name=DEMO,
            workflow_name=DEMO_WORKFLOW,  # the DBOS example's name, kept for existing rows
            queue=WORKFLOW_QUEUE,
            description="The DBOS queue-worker demo: num_steps steps, progress after each.",
            input_schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["num_steps"],
                "properties": steps,
            },
        ),
        WorkflowType(
            name=FAIL_AFTER,
            queue=WORKFLOW_QUEUE,
            description=(
                "Runs fail_after_steps of its num_steps steps, then raises: an ERROR workflow "
                "on purpose, for alerts, dashboards, retries and forks."
            ),
            input_schema={
                "type": "object",
                "additionalProperties": False,
                "required": ["num_steps", "fail_after_steps"],
                "properties": {
                    **steps,
                    "fail_after_steps": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": max_num_steps,
                        "description": "Steps completed before the failure (0: fail at once).",
                    },
                },
            },
        ),
    ]


def catalogue(
    max_num_steps: int = DEFAULT_MAX_NUM_STEPS, default_step_seconds: float = 1.0
) -> Catalogue:
    """The declared types, with the deployment's limits (MAX_NUM_STEPS, DEFAULT_STEP_SECONDS)."""
    return Catalogue(_declare(max_num_steps, default_step_seconds), default=DEMO)


# Every queue a declared type runs on: the worker registers each, /metrics reports each (zeros too).
QUEUES: tuple[str, ...] = catalogue().queues
