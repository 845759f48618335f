"""What the hostile-input tests share: a real API + worker on a fresh database of either kind, and
the after-the-fact evidence that nothing got in (row counts, the API's own 5xx count, its log).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import running_stack as conftest_running_stack
from tests.support import Stack

# Small, so the workflows that legitimate generated requests enqueue stay short.
MAX_NUM_STEPS = 3

# Tables that only a workflow (so only an accepted enqueue) writes. Left out on purpose: queues,
# application_versions and dbos_migrations, which a worker writes when it starts.
WORKFLOW_TABLES = (
    "workflow_status",
    "workflow_input",
    "workflow_output",
    "workflow_events",
    "workflow_events_history",
    "operation_outputs",
    "notifications",
    "streams",
    "event_dispatch_kv",
    "workflow_schedules",
)

# What uvicorn logs when a request escapes every exception handler (the client got a 500).
UNHANDLED = "Exception in ASGI application"
_LOG_RECORD = re.compile(r"^(?=\d{4}-\d\d-\d\d )", re.MULTILINE)
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Disconnect)\b.*$", re.MULTILINE)


@contextmanager
def running_stack(request: pytest.FixtureRequest, backend: str, workdir: Path) -> Iterator[Stack]:
    """An API and one worker on a fresh, migrated database; torn down (and dropped) after."""
    with conftest_running_stack(
        request,
        backend,
        workdir,
        MAX_NUM_STEPS=str(MAX_NUM_STEPS),
        # Generated workflows may still be running at teardown: don't wait for them.
        WORKER_SHUTDOWN_GRACE_SECONDS="1",
    ) as stack:
        yield stack


def _engine(database_url: str) -> sa.Engine:
    return sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))


def table_counts(database_url: str) -> dict[str, int]:
    """Rows per workflow table, plus the set of tables: a dropped table shows up as missing."""
    engine = _engine(database_url)
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names(schema="dbos" if postgres else None))
            counts = {
                table: int(
                    conn.execute(
                        sa.text(f"SELECT count(*) FROM {'dbos.' if postgres else ''}{table}")
                    ).scalar_one()
                )
                for table in WORKFLOW_TABLES
                if table in present
            }
    finally:
        engine.dispose()
    counts["<tables>"] = len(present)
    return counts


def server_error_counts(base_url: str) -> dict[str, float]:
    """The API's own count of 5xx responses, per series of queue_worker_http_requests_total."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    errors: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("queue_worker_http_requests_total{") and 'status="5' in line:
            series, value = line.rsplit(" ", 1)
            if float(value) > 0:
                errors[series] = float(value)
    return errors


def unhandled_exceptions(stack: Stack) -> list[str]:
    """For each request that escaped every exception handler, its exception line from the log."""
    assert stack.api is not None
    found = []
    for record in _LOG_RECORD.split(stack.api.log()):
        if UNHANDLED in record:
            raised = _EXCEPTION_LINE.findall(record)
            found.append(raised[-1][:200] if raised else record[:200])
    return found
