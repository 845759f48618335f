"""The live streams' reads of the dbos schema (services/api/streams/ polls these).

One statement fetches every workflow that any open per-workflow stream watches, by primary key,
with its progress event joined in: the cost of a poll grows with the number of distinct workflows
watched, never with the number of people watching them. List streams reuse
WorkflowQueries.list_page (one statement per distinct list query). Plain SQL that Postgres and
SQLite both accept; tests/integration/test_streams.py runs it on both.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from services.common.names import PROGRESS_EVENT
from services.common.sql import DETAIL_SELECT, WorkflowQueries, WorkflowRow, _to_row

# The detail's columns (the events carry what GET /api/workflows/{id} returns), many ids at once.
_BY_IDS = DETAIL_SELECT + "WHERE ws.workflow_uuid IN :ids\n"

# Postgres and SQLite both take this many bound values in one IN list with room to spare.
MAX_IDS_PER_STATEMENT = 500


class StreamQueries(WorkflowQueries):
    """WorkflowQueries plus the poller's batched read. `statements` counts every statement the
    poller sent, so tests and bench/streams.py can see what the streams cost the database."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        self.statements = 0

    def rows_by_ids(self, workflow_ids: Sequence[str]) -> list[WorkflowRow]:
        """The watched workflows that still exist (a deleted one is simply absent)."""
        rows: list[WorkflowRow] = []
        ids = sorted(set(workflow_ids))
        stmt = sa.text(self._sql(_BY_IDS)).bindparams(sa.bindparam("ids", expanding=True))
        with self.engine.connect() as conn:
            for start in range(0, len(ids), MAX_IDS_PER_STATEMENT):
                chunk = ids[start : start + MAX_IDS_PER_STATEMENT]
                self.statements += 1
                result = conn.execute(stmt, {"ids": chunk, "event_key": PROGRESS_EVENT})
                rows.extend(_to_row(r._mapping, with_error=True) for r in result)
        return rows
