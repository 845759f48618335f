"""How a workflow row looks in JSON: the seed's fields first, then what operators need."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.common.sql import WorkflowRow


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def workflow_json(row: WorkflowRow, *, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workflow_id": row.workflow_id,
        "workflow_status": row.status,
        "steps_completed": row.steps_completed,
        "num_steps": row.num_steps,
        "workflow_name": row.name,
        "queue_name": row.queue_name,
        "priority": row.priority,
        "partition_key": row.partition_key,
        "created_at": iso(row.created_at_ms),
        "started_at": iso(row.started_at_ms),
        "completed_at": iso(row.completed_at_ms),
    }
    if detail:
        out.update(
            {
                "updated_at": iso(row.updated_at_ms),
                "executor_id": row.executor_id,
                "app_version": row.app_version,
                "recovery_attempts": row.recovery_attempts,
                "error": row.error,
                # Added for the detail view (issue 13): what it was given and what it returned.
                "input": row.input,
                "result": row.result,
                "forked_from": row.forked_from,
            }
        )
    return out


def dead_letter_json(row: WorkflowRow) -> dict[str, Any]:
    """A dead-letter item: the list item's fields and why it failed."""
    out = workflow_json(row)
    out.update(
        {
            "error": row.error,
            "recovery_attempts": row.recovery_attempts,
            "app_version": row.app_version,
        }
    )
    return out
