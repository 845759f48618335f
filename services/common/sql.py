"""The API's reads of the dbos schema, in one place (the worker's writes to our own tables and
its hand-back UPDATE of dbos.workflow_status are in executor_sql.py; versions in versions_sql.py;
the wake-up trigger in wake_sql.py).

The statements are plain SQL that Postgres and SQLite both accept; only the schema prefix differs
(`dbos.` on Postgres, none on SQLite). They read tables created by the pinned dbos version, and
tests/integration/test_sql.py runs each of them against a freshly migrated schema of both kinds.
Writes go through DBOS/DBOSClient; this module only reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from services.common.dbos_internals import DefaultSerializer, deserialize_value
from services.common.names import PROGRESS_EVENT
from services.common.payloads import decode_error, decode_inputs, decode_value
from services.common.pooler import PGBOUNCER_SESSION, set_on_connect
from services.common.queue_holds_sql import HOLD_REASONS, queue_holds

# Our reads and writes give up after this long rather than hang a request or a worker thread.
STATEMENT_TIMEOUT_MS = 10_000

# Columns of one workflow row as the API reports it, with its progress event joined in.
# The join is on the event table's primary key, so a page of N rows is one statement, not N+1.
_WORKFLOW_COLUMNS = """
    ws.workflow_uuid, ws.status, ws.name, ws.queue_name, ws.created_at, ws.updated_at,
    ws.started_at_epoch_ms, ws.completed_at, ws.priority, ws.executor_id,
    ws.application_version, ws.recovery_attempts, ws.attributes, ws.queue_partition_key,
    ev.value AS progress_value, ev.serialization AS progress_serialization
"""

_LIST_PAGE = """
SELECT {columns}
FROM {s}workflow_status ws
LEFT JOIN {s}workflow_events ev ON ev.workflow_uuid = ws.workflow_uuid AND ev.key = :event_key
WHERE {filters}
ORDER BY ws.created_at DESC, ws.workflow_uuid DESC
LIMIT :limit
"""

# Keyset pagination: `created_at <= :c` alone is what an index range scan can use; the OR breaks
# ties between rows created in the same millisecond.
_AFTER_CURSOR = (
    "ws.created_at <= :cursor_created_at AND "
    "(ws.created_at < :cursor_created_at OR ws.workflow_uuid < :cursor_id)"
)

# DBOS 3.4 writes a workflow's output and error to workflow_output and its inputs to
# workflow_input (the workflow_status columns of those names stay NULL on new rows, and hold them
# only on rows written by older dbos versions): reading ws.error alone showed every failure
# as `error: null`.
# A workflow's detail (GET /api/workflows/{id}, and the live streams' events, which carry the
# same fields): everything but the WHERE clause.
DETAIL_SELECT = """
SELECT {columns}, COALESCE(wo.error, ws.error) AS error, COALESCE(wo.output, ws.output) AS output,
    COALESCE(wi.inputs, ws.inputs) AS inputs, ws.serialization, ws.forked_from
FROM {s}workflow_status ws
LEFT JOIN {s}workflow_events ev ON ev.workflow_uuid = ws.workflow_uuid AND ev.key = :event_key
LEFT JOIN {s}workflow_output wo ON wo.workflow_uuid = ws.workflow_uuid
LEFT JOIN {s}workflow_input wi ON wi.workflow_uuid = ws.workflow_uuid
"""
_GET_ONE = DETAIL_SELECT + "WHERE ws.workflow_uuid = :workflow_id\n"

# Index-only on Postgres (idx_workflow_status_in_flight_v2 covers queue_name, status, created_at).
_QUEUE_COUNTS = """
SELECT queue_name, status, count(*) AS n, min(created_at) AS oldest
FROM {s}workflow_status
WHERE status IN ('ENQUEUED', 'PENDING') AND queue_name IS NOT NULL
GROUP BY queue_name, status
"""

_ATTRIBUTES = "SELECT attributes FROM {s}workflow_status WHERE workflow_uuid = :workflow_id"

# One row by primary key, for the worker's queue-wait and duration metrics.
_WORKFLOW_TIMING = """
SELECT name, status, queue_name, created_at, started_at_epoch_ms, recovery_attempts
FROM {s}workflow_status
WHERE workflow_uuid = :workflow_id
"""

_REGISTERED_QUEUES = """
SELECT name, worker_concurrency, concurrency, polling_interval_sec FROM {s}queues
"""

# Reads a dbos table, so it fails until the schema exists: readiness means "migrated and reachable".
_PING = "SELECT max(version) FROM {s}dbos_migrations"


@dataclass(frozen=True)
class WorkflowRow:
    workflow_id: str
    status: str
    name: str
    queue_name: str | None
    created_at_ms: int
    updated_at_ms: int | None
    started_at_ms: int | None
    completed_at_ms: int | None
    priority: int
    executor_id: str | None
    app_version: str | None
    recovery_attempts: int
    steps_completed: int | None
    num_steps: int | None
    # The queue the API enqueued it on (kept in attributes: DBOS clears queue_name on cancel).
    queue_hint: str | None = None
    error: str | None = None
    # Detail only (get): the decoded input and result, and the workflow this one was forked from.
    input: Any = None
    result: Any = None
    forked_from: str | None = None
    # The tenant key it was enqueued under (DBOS's queue_partition_key).
    partition_key: str | None = None


@dataclass(frozen=True)
class QueueStats:
    name: str
    enqueued: int
    pending: int
    oldest_enqueued_at_ms: int | None
    worker_concurrency: int | None
    global_concurrency: int | None
    polling_interval_sec: float | None
    registered: bool
    # Of the ENQUEUED backlog, how much a worker could start now (queue_holds_sql.py), and what
    # holds back the rest, by reason (plus the DELAYED workflows, under "delayed").
    runnable: int
    held: Mapping[str, int]

    def oldest_enqueued_age_sec(self, now_ms: int | None = None) -> float:
        if self.oldest_enqueued_at_ms is None:
            return 0.0
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return max(0.0, (now - self.oldest_enqueued_at_ms) / 1000.0)


@dataclass(frozen=True)
class WorkflowTiming:
    name: str
    status: str
    queue_name: str | None
    created_at_ms: int
    # When a worker last dequeued it (None if it never went through a queue).
    started_at_ms: int | None
    # How many times it was dispatched: 1 on the first dequeue, more after recoveries.
    recovery_attempts: int


def create_engine(database_url: str, *, pool_size: int = 5, pooler: str = "") -> sa.Engine:
    """A read engine for this module. Postgres statements time out rather than hang a request.
    With `pooler` (DATABASE_POOLER), one short client session per checkout (services/common/
    pooler.py): PgBouncer, not this process, bounds the server connections."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {
            "application_name": "queue_worker_api_reads",
            "connect_timeout": 5,
        }
        if pooler == PGBOUNCER_SESSION:
            engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args=connect_args)
            set_on_connect(engine, {"statement_timeout": str(STATEMENT_TIMEOUT_MS)})
            return engine
        return sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=10,
            pool_pre_ping=True,
            connect_args={
                **connect_args,
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            },
        )
    return sa.create_engine(url, connect_args={"timeout": 10})


class WorkflowQueries:
    """Read-only queries over the dbos system schema, for one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._schema = "dbos." if engine.dialect.name == "postgresql" else ""

    def _sql(self, template: str, **parts: str) -> str:
        return template.format(s=self._schema, columns=_WORKFLOW_COLUMNS, **parts)

    def ping(self) -> None:
        """Raise unless the database is reachable and the dbos schema exists."""
        with self.engine.connect() as conn:
            conn.execute(sa.text(self._sql(_PING)))

    def list_page(
        self,
        *,
        limit: int,
        statuses: list[str] | None = None,
        names: list[str] | None = None,
        queue_names: list[str] | None = None,
        after: tuple[int, str] | None = None,
    ) -> list[WorkflowRow]:
        """One page, newest first; `after` is the previous page's last (created_at, id)."""
        filters = ["1 = 1"]
        params: dict[str, Any] = {"limit": limit, "event_key": PROGRESS_EVENT}
        binds: list[sa.BindParameter[Any]] = []
        for column, values, key in (
            ("ws.status", statuses, "statuses"),
            ("ws.name", names, "names"),
            ("ws.queue_name", queue_names, "queue_names"),
        ):
            if values:
                filters.append(f"{column} IN :{key}")
                params[key] = values
                binds.append(sa.bindparam(key, expanding=True))
        if after is not None:
            filters.append(_AFTER_CURSOR)
            params["cursor_created_at"], params["cursor_id"] = after
        stmt = sa.text(self._sql(_LIST_PAGE, filters=" AND ".join(filters))).bindparams(*binds)
        with self.engine.connect() as conn:
            return [_to_row(r._mapping) for r in conn.execute(stmt, params)]

    def get(self, workflow_id: str) -> WorkflowRow | None:
        stmt = sa.text(self._sql(_GET_ONE))
        with self.engine.connect() as conn:
            row = conn.execute(
                stmt, {"workflow_id": workflow_id, "event_key": PROGRESS_EVENT}
            ).first()
        return None if row is None else _to_row(row._mapping, with_error=True)

    def get_fingerprint(self, workflow_id: str, *, conn: sa.Connection | None = None) -> str | None:
        """The request fingerprint the API stored at enqueue; None if there is no such workflow.
        `conn`: read inside that (caller's) transaction, e.g. to see rows it wrote."""
        if conn is not None:
            row = conn.execute(
                sa.text(self._sql(_ATTRIBUTES)), {"workflow_id": workflow_id}
            ).first()
        else:
            with self.engine.connect() as own:
                row = own.execute(
                    sa.text(self._sql(_ATTRIBUTES)), {"workflow_id": workflow_id}
                ).first()
        if row is None:
            return None
        return str(_attributes(row.attributes).get("request_fingerprint", ""))

    def workflow_timing(self, workflow_id: str) -> WorkflowTiming | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(self._sql(_WORKFLOW_TIMING)), {"workflow_id": workflow_id}
            ).first()
        if row is None:
            return None
        return WorkflowTiming(
            name=row.name,
            status=row.status,
            queue_name=row.queue_name,
            created_at_ms=int(row.created_at),
            started_at_ms=_int_or_none(row.started_at_epoch_ms),
            recovery_attempts=int(row.recovery_attempts or 0),
        )

    def queue_stats(self, known_queues: tuple[str, ...]) -> list[QueueStats]:
        """Counts for every registered or known queue, zeros included, sorted by name."""
        by_queue: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for queue_name, status, n, oldest in conn.execute(sa.text(self._sql(_QUEUE_COUNTS))):
                entry = by_queue.setdefault(queue_name, {})
                entry[status] = int(n)
                if status == "ENQUEUED":
                    entry["oldest"] = int(oldest) if oldest is not None else None
            registered = {r.name: r for r in conn.execute(sa.text(self._sql(_REGISTERED_QUEUES)))}
            holds = queue_holds(
                conn,
                self._schema,
                {q: (e.get("ENQUEUED", 0), e.get("PENDING", 0)) for q, e in by_queue.items()},
            )
        names = sorted(set(known_queues) | set(registered) | set(by_queue) | set(holds))
        stats = []
        for name in names:
            entry = by_queue.get(name, {})
            reg = registered.get(name)
            hold = holds.get(name)
            stats.append(
                QueueStats(
                    name=name,
                    enqueued=entry.get("ENQUEUED", 0),
                    pending=entry.get("PENDING", 0),
                    oldest_enqueued_at_ms=entry.get("oldest"),
                    worker_concurrency=reg.worker_concurrency if reg else None,
                    global_concurrency=reg.concurrency if reg else None,
                    polling_interval_sec=reg.polling_interval_sec if reg else None,
                    registered=reg is not None,
                    runnable=hold.runnable if hold else 0,
                    held=hold.held if hold else dict.fromkeys(HOLD_REASONS, 0),
                )
            )
        return stats


def _decode_progress(value: str | None, serialization: str | None) -> dict[str, Any] | None:
    """The progress event as the worker wrote it (portable JSON, or DBOS's default pickle)."""
    if value is None:
        return None
    try:
        decoded = deserialize_value(value, serialization, DefaultSerializer())
    except Exception:  # a foreign or corrupt value must not break a whole page
        return None
    return decoded if isinstance(decoded, dict) else None


def _attributes(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Postgres returns the JSONB column as a dict; SQLite returns the JSON text."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _to_row(m: Any, *, with_error: bool = False) -> WorkflowRow:
    progress = _decode_progress(m["progress_value"], m["progress_serialization"]) or {}
    attrs = _attributes(m["attributes"])
    num_steps = _int_or_none(progress.get("num_steps"))
    steps_completed = _int_or_none(progress.get("steps_completed"))
    if num_steps is None:
        # Before its first step a workflow has no progress event; the API stored num_steps in
        # the row's attributes at enqueue, so the page can still show "0 of N".
        num_steps = _int_or_none(attrs.get("num_steps"))
        if num_steps is not None:
            steps_completed = 0
    queue_hint = attrs.get("queue")
    return WorkflowRow(
        workflow_id=m["workflow_uuid"],
        status=m["status"],
        name=m["name"],
        queue_name=m["queue_name"],
        created_at_ms=int(m["created_at"]),
        updated_at_ms=m["updated_at"],
        started_at_ms=m["started_at_epoch_ms"],
        completed_at_ms=m["completed_at"],
        priority=int(m["priority"] or 0),
        executor_id=m["executor_id"],
        app_version=m["application_version"],
        recovery_attempts=int(m["recovery_attempts"] or 0),
        steps_completed=steps_completed,
        num_steps=num_steps,
        queue_hint=queue_hint if isinstance(queue_hint, str) else None,
        partition_key=m["queue_partition_key"],
        error=decode_error(m["error"], m["serialization"]) if with_error else None,
        input=decode_inputs(m["inputs"], m["serialization"]) if with_error else None,
        result=decode_value(m["output"], m["serialization"]) if with_error else None,
        forked_from=m["forked_from"] if with_error else None,
    )
