"""services/common/dbos_internals.enqueue_many writes the rows DBOSClient.enqueue writes, on
Postgres and on SQLite: same workflow_status and workflow_input columns, apart from the ones
that differ between any two enqueues (ids, timestamps, the per-insert creator token)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from dbos import DBOSClient, WorkflowSerializationFormat

from services.common.dbos_internals import client_engine, enqueue_many
from services.common.names import APP_NAME, WORKFLOW_QUEUE

# Differ between any two enqueues, whichever path wrote them.
PER_ENQUEUE = {"workflow_uuid", "created_at", "updated_at", "retention_timestamp", "creator_xid"}
# "now + delay_seconds" at each enqueue: compared within a few seconds, not exactly.
CLOCK = "delay_until_epoch_ms"


@pytest.fixture
def client(database_url: str) -> Iterator[DBOSClient]:
    c = DBOSClient(system_database_url=database_url, application_name=APP_NAME)
    yield c
    c.destroy()


def _options(workflow_id: str, **extra: Any) -> Any:
    return {
        "queue_name": WORKFLOW_QUEUE,
        "workflow_name": "workflow",
        "workflow_id": workflow_id,
        "serialization_type": WorkflowSerializationFormat.PORTABLE,
        "attributes": {"queue": WORKFLOW_QUEUE, "num_steps": 3, "request_fingerprint": "f"},
        "queue_partition_key": "tenant-a",
        **extra,
    }


def _row(engine: sa.Engine, table: str, workflow_id: str) -> dict[str, Any]:
    prefix = "dbos." if engine.dialect.name == "postgresql" else ""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT * FROM {prefix}{table} WHERE workflow_uuid = :w"), {"w": workflow_id}
        ).one()
    return {k: v for k, v in row._mapping.items() if k not in PER_ENQUEUE}


@pytest.mark.parametrize(
    "extra",
    [{}, {"priority": 5, "delay_seconds": 60.0}, {"workflow_timeout": 30.0, "app_version": "v1"}],
    ids=["plain", "priority+delay", "timeout+version"],
)
def test_rows_match_dbos_client_enqueue(client: DBOSClient, extra: dict[str, Any]) -> None:
    kwargs = {"num_steps": 3, "step_seconds": 0.5}
    client.enqueue(_options("by-client", **extra), **kwargs)
    engine = client_engine(client)
    with engine.begin() as conn:
        ids = enqueue_many(
            client, conn, [(_options(f"by-many-{i}", **extra), kwargs) for i in range(3)]
        )
    assert ids == ["by-many-0", "by-many-1", "by-many-2"]
    for table in ("workflow_status", "workflow_input"):
        expected = _row(engine, table, "by-client")
        expected_due = expected.pop(CLOCK, None)
        for workflow_id in ids:
            row = _row(engine, table, workflow_id)
            due = row.pop(CLOCK, None)
            assert row == expected, table
            assert (due is None) == (expected_due is None)
            assert due is None or abs(due - expected_due) < 5000


def test_a_failed_transaction_writes_nothing(client: DBOSClient) -> None:
    engine = client_engine(client)

    def write_then_fail() -> None:
        with engine.begin() as conn:
            enqueue_many(client, conn, [(_options("never"), {"num_steps": 1})])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    prefix = "dbos." if engine.dialect.name == "postgresql" else ""
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {prefix}workflow_status")).scalar()
    assert count == 0
