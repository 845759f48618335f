"""services/common/versions_sql.py and the API's per-version gauges, on both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from dbos import DBOSClient, WorkflowHandle

from services.api.version_metrics import VersionCollector, VersionStatsCache
from services.common.executor_sql import ExecutorQueries
from services.common.names import APP_NAME, WORKFLOW_QUEUE
from services.common.sql import WorkflowQueries, create_engine
from services.common.versions_sql import VersionImage, VersionQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    e = create_engine(database_url)
    yield e
    e.dispose()


def _table(engine: sa.Engine, name: str) -> str:
    return f"dbos.{name}" if engine.dialect.name == "postgresql" else name


def _register_version(engine: sa.Engine, version: str, timestamp_ms: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO {_table(engine, 'application_versions')} (version_id, version_name, "
                "version_timestamp, created_at, application_name) VALUES (:v, :v, :t, :t, :app)"
            ),
            {"v": version, "t": timestamp_ms, "app": APP_NAME},
        )


def _enqueue(client: DBOSClient) -> str:
    handle: WorkflowHandle[None] = client.enqueue(
        {"queue_name": WORKFLOW_QUEUE, "workflow_name": "workflow"}, 3
    )
    return handle.get_workflow_id()


def _set(engine: sa.Engine, workflow_id: str, **columns: str) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in columns)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"UPDATE {_table(engine, 'workflow_status')} SET {sets} WHERE workflow_uuid = :w"
            ),
            {"w": workflow_id, **columns},
        )


def test_recorded_images_survive_a_worker_that_does_not_know_its_own(engine: sa.Engine) -> None:
    versions = VersionQueries(engine)
    versions.record("abc", image="repo/worker:1.0.0", pinned=False)
    versions.record("abc", image=None, pinned=False)  # e.g. `queue-worker dev`: no WORKER_IMAGE
    assert versions.snapshot(APP_NAME, dead_after_sec=30).images == {
        "abc": VersionImage("repo/worker:1.0.0", False)
    }
    versions.record("abc", image="repo/worker:1.0.1", pinned=True)
    assert versions.snapshot(APP_NAME, dead_after_sec=30).images["abc"] == VersionImage(
        "repo/worker:1.0.1", True
    )


def test_snapshot_and_gauges_split_the_backlog_by_version(
    engine: sa.Engine, database_url: str
) -> None:
    now = int(time.time() * 1000)
    _register_version(engine, "old", now - 60_000)
    _register_version(engine, "new", now)
    client = DBOSClient(system_database_url=database_url, application_name=APP_NAME)
    try:
        versionless = [_enqueue(client) for _ in range(2)]
        handed_back = _enqueue(client)
        running = _enqueue(client)
    finally:
        client.destroy()
    _set(engine, handed_back, application_version="old")
    _set(engine, running, application_version="old", status="PENDING")
    executors = ExecutorQueries(engine)
    executors.heartbeat(
        executor_id="w-new", app_version="new", hostname="h", pid=1, state="running"
    )
    executors.heartbeat(
        executor_id="w-old", app_version="old", hostname="h", pid=2, state="running"
    )
    with engine.begin() as conn:  # w-old went silent a minute ago
        table = (
            "queue_worker.executors"
            if engine.dialect.name == "postgresql"
            else "queue_worker_executors"
        )
        conn.execute(
            sa.text(f"UPDATE {table} SET last_seen = last_seen - 60000 WHERE executor_id = 'w-old'")
        )

    snap = VersionQueries(engine).snapshot(APP_NAME, dead_after_sec=30)
    assert snap.latest == "new"
    assert snap.backlog_of("new") == len(versionless)  # version-less work is the latest's
    assert snap.backlog_of("old") == 2
    assert snap.versions_with_backlog() == {"new", "old"}
    assert snap.live_workers == {"new": 1}
    # The PENDING one has no live executor: nobody runs it, a drain is needed.
    assert (snap.served, snap.unserved_of("old")) == ({}, 2)
    _set(engine, running, executor_id="w-new")
    served = VersionQueries(engine).snapshot(APP_NAME, dead_after_sec=30)
    assert (served.served, served.unserved_of("old")) == ({"old": 1}, 1)

    cache = VersionStatsCache(VersionQueries(engine), ttl_sec=0, dead_after_sec=30)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in VersionCollector(cache).collect()
        for s in family.samples
    }
    q = ("queue", WORKFLOW_QUEUE)
    assert samples[("queue_worker_queue_depth_by_version", (("app_version", "new"), q))] == 2
    assert samples[("queue_worker_queue_depth_by_version", (("app_version", "old"), q))] == 1
    assert samples[("queue_worker_queue_in_flight_by_version", (("app_version", "old"), q))] == 1
    assert samples[("queue_worker_queue_in_flight_by_version", (("app_version", "new"), q))] == 0
    assert samples[("queue_worker_version_workers", (("app_version", "new"),))] == 1
    assert samples[("queue_worker_version_latest", (("app_version", "new"),))] == 1
    assert ("queue_worker_version_workers", (("app_version", "old"),)) not in samples
    # Summed over versions they are exactly the per-queue gauges (the autoscaling signal).
    (stats,) = WorkflowQueries(engine).queue_stats(KNOWN_QUEUES)
    depth = sum(v for (n, _), v in samples.items() if n == "queue_worker_queue_depth_by_version")
    pending = sum(
        v for (n, _), v in samples.items() if n == "queue_worker_queue_in_flight_by_version"
    )
    assert (depth, pending) == (stats.enqueued, stats.pending) == (3, 1)
