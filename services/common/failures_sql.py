"""Failed workflows (the dead letters) and the selections bulk actions work on.

Read-only SQL over the dbos schema, for Postgres and SQLite (tests/integration/test_failures.py
runs it on both); the actions themselves go through DBOSClient (fork, resume, cancel).
A failure's error lives in `workflow_output` (DBOS 3.4; `workflow_status.error` on older rows).
The dead-letter statuses are covered by DBOS's partial index idx_workflow_status_failed
(status, created_at), so a page stays an index range scan however many finished rows there are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from services.common.names import PROGRESS_EVENT
from services.common.sql import _WORKFLOW_COLUMNS, WorkflowRow, _attributes, _to_row

# Ended with an exception, or was dispatched more often than its max_recovery_attempts allows.
DEAD_STATUSES: tuple[str, ...] = ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
# What a retry can act on: the dead letters, and cancelled workflows (resumed).
RETRYABLE_STATUSES: tuple[str, ...] = (*DEAD_STATUSES, "CANCELLED")
# What a cancel can act on (a cancelled workflow needs nothing more).
CANCELLABLE_STATUSES: tuple[str, ...] = ("ENQUEUED", "DELAYED", "PENDING")

# A retry of workflow X runs as X-retry-1, X-retry-2, ...: deterministic ids, so a repeated
# request finds the retry it already made instead of making another.
RETRY_SUFFIX = "-retry-"
MAX_RETRIES_PER_WORKFLOW = 100

_ERROR = "COALESCE(wo.error, ws.error)"

_PAGE = """
SELECT {columns}, {error} AS error, NULL AS output, NULL AS inputs, ws.serialization,
    ws.forked_from
FROM {s}workflow_status ws
LEFT JOIN {s}workflow_events ev ON ev.workflow_uuid = ws.workflow_uuid AND ev.key = :event_key
LEFT JOIN {s}workflow_output wo ON wo.workflow_uuid = ws.workflow_uuid
WHERE {filters}
ORDER BY ws.created_at DESC, ws.workflow_uuid DESC
LIMIT :limit
"""

# Oldest first: a bulk action repeated until `more` is false then works through a backlog in
# the order it failed, and rows it acted on stop matching (resumed, cancelled or forked).
_SELECT_IDS = """
SELECT ws.workflow_uuid, ws.status
FROM {s}workflow_status ws
{join}
WHERE {filters}
ORDER BY ws.created_at, ws.workflow_uuid
LIMIT :limit
"""

_COUNT = "SELECT count(*) FROM {s}workflow_status ws {join} WHERE {filters}"

_BY_IDS = """
SELECT workflow_uuid, status, queue_name, attributes, forked_from
FROM {s}workflow_status WHERE workflow_uuid IN :ids
"""


@dataclass(frozen=True)
class FailureFilter:
    """Which workflows: statuses (required), workflow names, queues, a case-insensitive
    substring of the error, a created_at range in epoch ms, and whether already forked ones
    (retried or forked by hand: DBOS's was_forked_from) are included (None: either)."""

    statuses: tuple[str, ...]
    names: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    error_contains: str | None = None
    created_after_ms: int | None = None
    created_before_ms: int | None = None
    forked: bool | None = None

    @property
    def needs_error(self) -> bool:
        return self.error_contains is not None

    def describe(self) -> dict[str, Any]:
        """For the audit log line."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], ())}


@dataclass(frozen=True)
class KnownWorkflow:
    workflow_id: str
    status: str
    queue: str | None
    forked_from: str | None


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class FailureQueries:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._schema = "dbos." if engine.dialect.name == "postgresql" else ""

    def _where(
        self, f: FailureFilter, after: tuple[int, str] | None = None
    ) -> tuple[str, dict[str, Any], list[sa.BindParameter[Any]]]:
        filters = ["ws.status IN :statuses"]
        params: dict[str, Any] = {"statuses": list(f.statuses)}
        binds: list[sa.BindParameter[Any]] = [sa.bindparam("statuses", expanding=True)]
        for column, values, key in (
            ("ws.name", f.names, "names"),
            ("ws.queue_name", f.queues, "queues"),
        ):
            if values:
                filters.append(f"{column} IN :{key}")
                params[key] = list(values)
                binds.append(sa.bindparam(key, expanding=True))
        if f.error_contains is not None:
            filters.append(f"lower({_ERROR}) LIKE :error_pattern ESCAPE '\\'")
            params["error_pattern"] = _like_pattern(f.error_contains)
        if f.created_after_ms is not None:
            filters.append("ws.created_at >= :created_after")
            params["created_after"] = f.created_after_ms
        if f.created_before_ms is not None:
            filters.append("ws.created_at < :created_before")
            params["created_before"] = f.created_before_ms
        if f.forked is not None:
            filters.append("ws.was_forked_from = :forked")
            params["forked"] = f.forked
        if after is not None:
            filters.append(
                "ws.created_at <= :cursor_created_at AND "
                "(ws.created_at < :cursor_created_at OR ws.workflow_uuid < :cursor_id)"
            )
            params["cursor_created_at"], params["cursor_id"] = after
        return " AND ".join(filters), params, binds

    def _join(self, f: FailureFilter) -> str:
        if not f.needs_error:
            return ""
        return f"LEFT JOIN {self._schema}workflow_output wo ON wo.workflow_uuid = ws.workflow_uuid"

    def page(
        self, f: FailureFilter, *, limit: int, after: tuple[int, str] | None = None
    ) -> list[WorkflowRow]:
        """Newest first, with each workflow's error; `after` is the previous page's last row."""
        where, params, binds = self._where(f, after)
        params.update({"limit": limit, "event_key": PROGRESS_EVENT})
        sql = _PAGE.format(s=self._schema, columns=_WORKFLOW_COLUMNS, error=_ERROR, filters=where)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(sql).bindparams(*binds), params).all()
        return [_to_row(r._mapping, with_error=True) for r in rows]

    def select(self, f: FailureFilter, *, limit: int) -> list[tuple[str, str]]:
        """(workflow_id, status) of the oldest `limit` matches."""
        where, params, binds = self._where(f)
        params["limit"] = limit
        sql = _SELECT_IDS.format(s=self._schema, join=self._join(f), filters=where)
        with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(sa.text(sql).bindparams(*binds), params)]

    def count(self, f: FailureFilter) -> int:
        where, params, binds = self._where(f)
        sql = _COUNT.format(s=self._schema, join=self._join(f), filters=where)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql).bindparams(*binds), params).scalar_one())

    def by_ids(self, ids: list[str]) -> dict[str, KnownWorkflow]:
        """The workflows among `ids` that exist, with the queue to put them back on (the one the
        API enqueued them on: DBOS clears queue_name when a workflow is cancelled)."""
        if not ids:
            return {}
        sql = sa.text(_BY_IDS.format(s=self._schema)).bindparams(
            sa.bindparam("ids", expanding=True)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(sql, {"ids": ids}).all()
        out = {}
        for r in rows:
            hint = _queue_hint(r.attributes)
            out[r.workflow_uuid] = KnownWorkflow(
                r.workflow_uuid, r.status, hint or r.queue_name, r.forked_from
            )
        return out


def retry_root(workflow_id: str, forked_from: str | None) -> str:
    """The workflow a retry chain started from: X for X-retry-N (forked from the chain), else
    the workflow itself; every retry in a chain is then named X-retry-N."""
    if forked_from is None or RETRY_SUFFIX not in workflow_id:
        return workflow_id
    root, _, n = workflow_id.rpartition(RETRY_SUFFIX)
    return root if n.isdigit() and root else workflow_id


def retry_ids(root: str) -> list[str]:
    return [f"{root}{RETRY_SUFFIX}{n}" for n in range(1, MAX_RETRIES_PER_WORKFLOW + 1)]


def _queue_hint(raw: Any) -> str | None:
    value = _attributes(raw).get("queue")
    return value if isinstance(value, str) else None
