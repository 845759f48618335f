"""A workflow's steps from DBOS's step records (`operation_outputs`): GET /api/workflows/{id}/steps.

What DBOS 3.4 records, read from its source (_sys_db.py `_record_operation_result_txn`): one row
per completed operation of a workflow (a step, and also DBOS calls such as set_event or sleep),
keyed by (workflow_uuid, function_id), written only when the operation finishes, with the start
and end of the run that finished it, its output or error and the serialization. A step that was
running when its worker died leaves no row; when the workflow is recovered, the step runs again
and its row then records that later run only. Retries of a step inside one execution
(`retries_allowed`) are not recorded either. The workflow row counts its dispatches
(`recovery_attempts`: 1 for a run that was never recovered) and keeps the start of the latest
(`started_at_epoch_ms`).

So the step attempts are derived, honestly, as a lower bound: when the workflow was dispatched
more than once, the first operation that completed in the latest dispatch was the one next to run
when the previous execution stopped, so it ran at least twice (unless the previous execution
stopped between two operations); every other operation ran at least once. The response says
which (`attempts`, `reexecuted`) and gives the workflow's `dispatches` beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from services.common.payloads import decode_error, decode_value

_STEPS = """
SELECT function_id, function_name, output, error, child_workflow_id,
    started_at_epoch_ms, completed_at_epoch_ms, serialization
FROM {s}operation_outputs
WHERE workflow_uuid = :workflow_id AND function_id > :after
ORDER BY function_id
LIMIT :limit
"""

_WORKFLOW = """
SELECT ws.status, ws.recovery_attempts, ws.started_at_epoch_ms,
    (SELECT min(function_id) FROM {s}operation_outputs oo
     WHERE oo.workflow_uuid = ws.workflow_uuid
       AND oo.started_at_epoch_ms >= ws.started_at_epoch_ms) AS first_in_last_dispatch,
    (SELECT max(function_id) FROM {s}operation_outputs oo
     WHERE oo.workflow_uuid = ws.workflow_uuid) AS last_function_id
FROM {s}workflow_status ws
WHERE ws.workflow_uuid = :workflow_id
"""


@dataclass(frozen=True)
class Step:
    function_id: int
    name: str
    status: str  # SUCCESS or ERROR: only finished operations are recorded
    started_at_ms: int | None
    completed_at_ms: int | None
    output: Any
    error: str | None
    child_workflow_id: str | None
    attempts: int
    reexecuted: bool

    @property
    def duration_ms(self) -> int | None:
        if self.started_at_ms is None or self.completed_at_ms is None:
            return None
        return max(0, self.completed_at_ms - self.started_at_ms)


@dataclass(frozen=True)
class StepsPage:
    workflow_status: str
    dispatches: int
    # The highest function_id recorded (0: none): a fork may start at 1 .. this + 1.
    last_function_id: int
    steps: list[Step]


class StepQueries:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._schema = "dbos." if engine.dialect.name == "postgresql" else ""

    def _sql(self, template: str) -> sa.TextClause:
        return sa.text(template.format(s=self._schema))

    def summary(self, workflow_id: str, conn: sa.Connection | None = None) -> StepsPage | None:
        """The workflow's status, dispatches and last recorded step (no steps); None if unknown."""
        if conn is None:
            with self.engine.connect() as own:
                return self.summary(workflow_id, own)
        row = conn.execute(self._sql(_WORKFLOW), {"workflow_id": workflow_id}).first()
        if row is None:
            return None
        return StepsPage(
            workflow_status=row.status,
            dispatches=int(row.recovery_attempts or 0),
            last_function_id=int(row.last_function_id or 0),
            steps=[],
        )

    def page(self, workflow_id: str, *, after: int = 0, limit: int = 1000) -> StepsPage | None:
        """Steps with function_id > `after`, in order, at most `limit`; None if no workflow."""
        with self.engine.connect() as conn:
            head = conn.execute(self._sql(_WORKFLOW), {"workflow_id": workflow_id}).first()
            if head is None:
                return None
            rows = conn.execute(
                self._sql(_STEPS), {"workflow_id": workflow_id, "after": after, "limit": limit}
            ).all()
        dispatches = int(head.recovery_attempts or 0)
        rerun = head.first_in_last_dispatch if dispatches > 1 else None
        steps = [
            Step(
                function_id=int(r.function_id),
                name=r.function_name,
                status="ERROR" if r.error is not None else "SUCCESS",
                started_at_ms=r.started_at_epoch_ms,
                completed_at_ms=r.completed_at_epoch_ms,
                output=decode_value(r.output, r.serialization),
                error=decode_error(r.error, r.serialization),
                child_workflow_id=r.child_workflow_id,
                attempts=2 if r.function_id == rerun else 1,
                reexecuted=r.function_id == rerun,
            )
            for r in rows
        ]
        return StepsPage(
            workflow_status=head.status,
            dispatches=dispatches,
            last_function_id=int(head.last_function_id or 0),
            steps=steps,
        )
