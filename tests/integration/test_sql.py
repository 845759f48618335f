"""services/common/sql.py against a schema migrated by the pinned dbos version (both kinds)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from dbos import DBOSClient, WorkflowHandle

from services.common import sql, stream_sql
from services.common.dbos_internals import DBOSPortableJSON, DefaultSerializer
from services.common.names import PROGRESS_EVENT, WORKFLOW_QUEUE
from services.common.sql import WorkflowQueries, create_engine
from services.common.stream_sql import StreamQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES


def _enqueue(client: DBOSClient, n: int, queue: str = WORKFLOW_QUEUE) -> str:
    handle: WorkflowHandle[None] = client.enqueue(
        {"queue_name": queue, "workflow_name": "workflow", "attributes": {"num_steps": n}}, n
    )
    return handle.get_workflow_id()


def _set_event(q: WorkflowQueries, workflow_id: str, value: str, serialization: str) -> None:
    table = "dbos.workflow_events" if q.engine.dialect.name == "postgresql" else "workflow_events"
    with q.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO {table} (workflow_uuid, key, value, serialization) "
                "VALUES (:w, :k, :v, :s)"
            ),
            {"w": workflow_id, "k": PROGRESS_EVENT, "v": value, "s": serialization},
        )


def test_ping_and_empty_queue_stats_report_zeros(queries: WorkflowQueries) -> None:
    queries.ping()
    stats = queries.queue_stats(KNOWN_QUEUES)
    assert [(s.name, s.enqueued, s.pending, s.registered) for s in stats] == [
        (WORKFLOW_QUEUE, 0, 0, False)
    ]
    assert stats[0].oldest_enqueued_age_sec() == 0.0


def test_ping_fails_without_schema(tmp_path: object) -> None:
    q = WorkflowQueries(create_engine(f"sqlite:///{tmp_path}/empty.sqlite"))
    with pytest.raises(sa.exc.OperationalError):
        q.ping()


def test_page_progress_from_both_serializations(
    queries: WorkflowQueries, client: DBOSClient
) -> None:
    portable, pickled, fresh = _enqueue(client, 5), _enqueue(client, 7), _enqueue(client, 9)
    _set_event(
        queries, portable, DBOSPortableJSON.serialize({"steps_completed": 2, "num_steps": 5}),
        "portable_json",
    )  # fmt: skip
    _set_event(
        queries, pickled, DefaultSerializer().serialize({"steps_completed": 3, "num_steps": 7}),
        "py_pickle",
    )  # fmt: skip
    rows = {r.workflow_id: r for r in queries.list_page(limit=10)}
    assert (rows[portable].steps_completed, rows[portable].num_steps) == (2, 5)
    assert (rows[pickled].steps_completed, rows[pickled].num_steps) == (3, 7)
    # No event yet: num_steps comes from the attributes written at enqueue.
    assert (rows[fresh].steps_completed, rows[fresh].num_steps) == (0, 9)
    one = queries.get(portable)
    assert one is not None
    assert one.status == "ENQUEUED"
    assert one.error is None
    assert queries.get("missing") is None


def test_corrupt_progress_does_not_break_the_page(
    queries: WorkflowQueries, client: DBOSClient
) -> None:
    bad = _enqueue(client, 3)
    _set_event(queries, bad, "not base64 pickle!", "py_pickle")
    _set_event(queries, _enqueue(client, 4), json.dumps([1, 2]), "portable_json")
    rows = queries.list_page(limit=10)
    assert {r.num_steps for r in rows} == {3, 4}  # fell back to the attributes


def test_keyset_pages_cover_everything_once(queries: WorkflowQueries, client: DBOSClient) -> None:
    ids = {_enqueue(client, 1) for _ in range(25)}
    seen: list[str] = []
    after = None
    while True:
        page = queries.list_page(limit=6, after=after)
        if not page:
            break
        seen.extend(r.workflow_id for r in page)
        after = (page[-1].created_at_ms, page[-1].workflow_id)
    assert len(seen) == len(set(seen)) == 25
    assert set(seen) == ids
    keys = [(r.created_at_ms, r.workflow_id) for r in queries.list_page(limit=25)]
    assert keys == sorted(keys, reverse=True)


def test_filters_and_queue_counts(queries: WorkflowQueries, client: DBOSClient) -> None:
    for _ in range(3):
        _enqueue(client, 1)
    _enqueue(client, 1, queue="other-queue")
    assert len(queries.list_page(limit=50, statuses=["ENQUEUED"])) == 4
    assert queries.list_page(limit=50, statuses=["SUCCESS"]) == []
    assert len(queries.list_page(limit=50, queue_names=["other-queue"])) == 1
    assert len(queries.list_page(limit=50, names=["workflow"])) == 4
    stats = {s.name: s for s in queries.queue_stats(KNOWN_QUEUES)}
    assert stats[WORKFLOW_QUEUE].enqueued == 3
    assert stats["other-queue"].enqueued == 1
    assert stats[WORKFLOW_QUEUE].oldest_enqueued_at_ms is not None
    assert stats[WORKFLOW_QUEUE].oldest_enqueued_age_sec() >= 0


def test_queue_depth_query_is_index_only_on_postgres(pg_url: str) -> None:
    """The depth query must stay cheap at millions of rows: no sequential scan."""
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))  # small tables would otherwise seq-scan
        plan = "\n".join(
            r[0] for r in conn.execute(sa.text("EXPLAIN " + sql._QUEUE_COUNTS.format(s="dbos.")))
        )
    engine.dispose()
    assert "idx_workflow_status_in_flight_v2" in plan, plan
    assert "Seq Scan" not in plan


def test_stream_poller_reads_every_watched_workflow_in_bounded_statements(
    queries: WorkflowQueries, client: DBOSClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """services/common/stream_sql.py: the live streams' one batched read per poll."""
    stream = StreamQueries(queries.engine)
    ids = [_enqueue(client, n) for n in (3, 4, 5, 6, 7)]
    _set_event(
        queries, ids[1], DBOSPortableJSON.serialize({"steps_completed": 2, "num_steps": 4}),
        "portable_json",
    )  # fmt: skip
    monkeypatch.setattr(stream_sql, "MAX_IDS_PER_STATEMENT", 2)
    rows = {r.workflow_id: r for r in stream.rows_by_ids([*ids, ids[0], "deleted-meanwhile"])}
    assert stream.statements == 3  # 6 distinct ids, 2 per statement
    assert set(rows) == set(ids)  # a missing id is simply absent
    assert (rows[ids[1]].steps_completed, rows[ids[1]].num_steps) == (2, 4)
    assert (rows[ids[4]].steps_completed, rows[ids[4]].num_steps) == (0, 7)
    assert all(r.status == "ENQUEUED" for r in rows.values())
    assert stream.rows_by_ids([]) == []
    assert stream.statements == 3
