"""What the API's per-version gauges cost next to the per-queue ones, on a large backlog.

    python -m bench.version_stats [ADMIN_URL]

The per-queue count is index-only (idx_workflow_status_in_flight_v2); the per-version snapshot
(services/common/versions_sql.py) also reads application_version, so it visits the heap of every
in-flight row. Loads 10k and then 100k ENQUEUED rows (plus 50 PENDING and 200k finished) into a
throwaway database and prints the median of 15 runs of each. docs/metrics.md quotes the figures.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable

import psycopg
import sqlalchemy as sa

from bench.common import DB_PREFIX, DEFAULT_ADMIN_URL
from services.common.migrate import migrate_schema
from services.common.names import APP_NAME
from services.common.sql import WorkflowQueries, create_engine
from services.common.versions_sql import VersionQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES

# The last 30 ENQUEUED rows carry a version (handed back by an old worker); the rest were
# enqueued by the API without one, as in production.
_LOAD = """
INSERT INTO dbos.workflow_status (workflow_uuid, status, name, created_at, updated_at,
    application_version, queue_name, priority, application_name)
SELECT md5('w' || i)::uuid::text,
       CASE WHEN i < %(e)s THEN 'ENQUEUED' WHEN i < %(e)s + 50 THEN 'PENDING' ELSE 'SUCCESS' END,
       'workflow', 1700000000000 + i, 1700000000000 + i,
       CASE WHEN i < %(e)s - 30 THEN NULL ELSE 'v' || (i %% 2) END,
       'workflow-queue', 0, 'queue-worker'
FROM generate_series(0, %(e)s + 200000) AS s(i)
"""


def _median_ms(fn: Callable[[], object], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _measure(engine: sa.Engine) -> tuple[float, float]:
    queues, versions = WorkflowQueries(engine), VersionQueries(engine)
    per_queue = _median_ms(lambda: queues.queue_stats(KNOWN_QUEUES))
    per_version = _median_ms(lambda: versions.snapshot(APP_NAME, dead_after_sec=30))
    return per_queue, per_version


def main(admin_url: str = DEFAULT_ADMIN_URL) -> None:
    name = f"{DB_PREFIX}versions_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate_schema(url)
        for enqueued in (10_000, 100_000):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE dbos.workflow_status CASCADE")
                conn.execute(_LOAD, {"e": enqueued})
                conn.execute("VACUUM ANALYZE dbos.workflow_status")
            engine = create_engine(url, pool_size=1)
            try:
                per_queue, per_version = _measure(engine)
            finally:
                engine.dispose()
            print(
                f"{enqueued} ENQUEUED (+50 PENDING, 200k finished): per-queue count "
                f"{per_queue:.1f} ms, per-version snapshot {per_version:.1f} ms"
            )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


if __name__ == "__main__":
    main(*sys.argv[1:2])
