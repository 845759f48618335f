"""The one door to dbos's private API (`dbos._*`): every name this project uses that dbos does not
export publicly is imported here, with why, so a dbos upgrade means reviewing this file.
All checked against dbos 3.4.x, which pyproject.toml pins exactly; tests/unit/test_dbos_internals.py
fails loudly, naming the name, if one moved or changed shape.

Public names are used where dbos exports them (`from dbos import WorkflowSerializationFormat`).
"""

from __future__ import annotations

from typing import Any

# The queue thread and its dispatch, which services/worker/queue_hooks.py wraps so a NOTIFY or a
# finished workflow wakes the thread (issue 15); dbos 3.4 has no hook for it.
from dbos import _queue as dbos_queue

# The in-process registry DBOS counts worker_concurrency from, and the handle type of a dequeued
# synchronous workflow, which carries its Future (queue_hooks.py counts claims with them).
from dbos._core import ActiveWorkflowById, WorkflowHandleFuture

# Exceptions dbos 3.4 raises but does not export: a cancelled workflow and a conflicting id
# (instrumentation counts them apart from failures), and an id already in use (the API's
# idempotent enqueue with workflow_id_reuse_policy="reject" answers from the stored row). And
# DBOSException itself, the only error DBOSClient.create_schedule raises for a name taken between
# the API's check and its insert (/api/schedules answers that 409).
from dbos._error import (
    DBOSException,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
    DBOSWorkflowIDInUseError,
)

# Decoding what DBOS stored (events, inputs, outputs, errors, step outputs) in the API's own SQL
# reads (services/common/payloads.py), which bypass DBOS's client to read a page of workflows, or
# a workflow with its payloads, in one statement.
from dbos._serialization import (
    DBOSPortableJSON,
    DefaultSerializer,
    deserialize_args,
    deserialize_exception,
    deserialize_value,
)

__all__ = [
    "ActiveWorkflowById",
    "DBOSException",
    "DBOSPortableJSON",
    "DBOSWorkflowCancelledError",
    "DBOSWorkflowConflictIDError",
    "DBOSWorkflowIDInUseError",
    "DefaultSerializer",
    "WorkflowHandleFuture",
    "client_engine",
    "dbos_instance",
    "dbos_queue",
    "deserialize_args",
    "deserialize_exception",
    "deserialize_value",
    "enqueue_many",
    "workflow_registry",
]


def dbos_instance() -> Any | None:
    """The launched DBOS instance of this process, or None (read at call time: dbos sets it at
    construction and clears it on destroy). The worker's metrics count its active workflows."""
    from dbos import _dbos

    return _dbos._dbos_global_instance


def workflow_registry() -> Any:
    """The registry of decorated workflows, which exists before any DBOS instance: the worker
    hashes it into its application version before launch and checks the catalogue against it."""
    from dbos._dbos import _get_or_create_dbos_registry

    return _get_or_create_dbos_registry()


def client_engine(client: Any) -> Any:
    """A DBOSClient's SQLAlchemy engine, so a batch of enqueues shares one transaction
    (`enqueue_in_transaction` takes a connection; dbos 3.4 exposes no engine publicly)."""
    return client._sys_db.engine


class _StatementRecorder:
    """Stands in for a connection while DBOS builds one enqueue's INSERTs, recording each
    statement and its parameters instead of running them. DBOS's `_execute_prepared` sends its
    cached, compiled SQL through `exec_driver_sql(sql, params)` when the connection has its
    engine's dialect (Postgres), and `execute(statement, values)` otherwise (SQLite); both are
    recorded. `fetchone()` answering None is "the row is new", so DBOS goes on to its
    workflow_input INSERT without the checks that only apply to an existing row."""

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self.sql: dict[str, list[Any]] = {}
        self.statements: dict[tuple[str, tuple[str, ...]], tuple[Any, list[Any]]] = {}

    def exec_driver_sql(self, sql: str, params: dict[str, Any]) -> _StatementRecorder:
        self.sql.setdefault(sql, []).append(params)
        return self

    def execute(self, statement: Any, values: dict[str, Any]) -> _StatementRecorder:
        key = (statement.table.name, tuple(values))
        self.statements.setdefault(key, (statement, []))[1].append(values)
        return self

    def fetchone(self) -> None:
        return None


def enqueue_many(client: Any, conn: Any, items: list[tuple[Any, dict[str, Any]]]) -> list[str]:
    """Enqueue every (EnqueueOptions, kwargs) in `conn`'s transaction with one executemany per
    table, where `client.enqueue_in_transaction` sends two INSERT round trips per workflow.

    Rows are built by DBOS's own code (the client's `_build_enqueue_status` and the system
    database's `_insert_workflow_status`, with its cached compiled SQL, recorded by
    _StatementRecorder), so they are the rows `DBOSClient.enqueue` writes
    (tests/integration/test_enqueue_many.py compares them column by column on both databases).
    Only for workflows with fresh ids (no Idempotency-Key): a conflicting id would not be
    detected row by row."""
    from dbos._utils import generate_uuid

    sys_db = client._sys_db
    sys_db._apply_caller_schema(conn)
    recorder = _StatementRecorder(sys_db.engine.dialect)
    ids = []
    for options, kwargs in items:
        workflow_id, status = client._build_enqueue_status(options, **kwargs)
        sys_db._insert_workflow_status(status, recorder, creator_xid=generate_uuid())
        ids.append(workflow_id)
    # Status rows before input rows, as DBOS writes them; psycopg pipelines an executemany.
    for sql, params in recorder.sql.items():
        conn.exec_driver_sql(sql, params)
    for statement, rows in recorder.statements.values():
        conn.execute(statement, rows)
    return ids
