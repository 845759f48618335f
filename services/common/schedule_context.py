"""What a schedule made through /api/schedules stores in its DBOS context, read by both sides.

DBOS 3.4 calls a scheduled workflow with (scheduled_at, context). The API stores the declared
workflow type and its validated input in the context; the worker's schedule runner
(services/worker/schedule_runner.py) reads them back and enqueues that type's workflow, with a
workflow id derived from the firing's own, so the API can name a run before it exists.
"""

from __future__ import annotations

from typing import Any


def make_context(type_name: str, workflow_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_name, "input": workflow_input}


def read_context(context: Any) -> tuple[str, dict[str, Any]] | None:
    """(type name, input), or None for a context this project did not write."""
    if not isinstance(context, dict):
        return None
    type_name, workflow_input = context.get("type"), context.get("input")
    if not isinstance(type_name, str) or not isinstance(workflow_input, dict):
        return None
    return type_name, workflow_input


def run_workflow_id(firing_id: str) -> str:
    """The id of the workflow a firing enqueues. DBOS names firings
    sched-{schedule}-{scheduled time} (or sched-{schedule}-trigger-{time} when triggered)."""
    return f"{firing_id}-run"
