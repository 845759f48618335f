"""Retention at 1M finished rows: `python -m bench.retention [--rows N] [--max-age-hours H]`.

Seeds N workflows with SQL (bench/seed_rows.py: 250 in flight at the head, the rest finished
history 100 ms apart, so 1M rows span about 28 hours), plus two step records per workflow in
operation_outputs, then:

1. baseline: p50/p95 of a list page (WorkflowQueries.list_page, as GET /api/workflows does) and
   of the metrics query (queue_stats, as /metrics does), a dead-letter page, a snapshot of every
   in-flight row;
2. retention with the worker's code (RetentionQueries.run, batches of --batch) of everything that
   finished more than --max-age-hours ago, timed, with the list page probed throughout it;
3. the same measurements right after (before any vacuum) and after VACUUM ANALYZE (what
   autovacuum does on its own soon after a large delete);
4. checks: every in-flight row is byte-for-byte as before, no orphan row is left in any child
   table, and only finished rows older than the cutoff are gone.

Ratios are after / before in the same run. Needs the machine's Postgres (BENCH_ADMIN_URL).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_ADMIN_URL, Bench, connect, progress, summarize_ms
from bench.seed_rows import count_by_status, now_ms, seed_workflows
from services.common.failures_sql import DEAD_STATUSES, FailureFilter, FailureQueries
from services.common.retention_sql import RetentionQueries
from services.common.sql import WorkflowQueries, create_engine
from services.common.workflow_types import QUEUES

_STEPS = """
INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name, output,
    started_at_epoch_ms, completed_at_epoch_ms, serialization, application_name,
    retention_timestamp)
SELECT ws.workflow_uuid, f.id, 'demo_step', '0', ws.created_at + f.id * 10,
    ws.created_at + f.id * 10 + 5, 'portable_json', 'queue-worker', ws.created_at
FROM dbos.workflow_status ws CROSS JOIN (VALUES (1), (2)) AS f(id)
WHERE ws.status <> 'ENQUEUED'
"""

_IN_FLIGHT = """
SELECT workflow_uuid, status, updated_at, completed_at, owner_xid FROM dbos.workflow_status
WHERE status IN ('ENQUEUED', 'PENDING', 'DELAYED') ORDER BY workflow_uuid
"""

_ORPHANS = """
SELECT (SELECT count(*) FROM dbos.{t} c
        WHERE NOT EXISTS (SELECT 1 FROM dbos.workflow_status ws
                          WHERE ws.workflow_uuid = c.workflow_uuid))
"""


def _time(fn: Any, n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return summarize_ms(samples)


def measure(queries: WorkflowQueries, failures: FailureQueries, n: int) -> dict[str, Any]:
    dead = FailureFilter(statuses=DEAD_STATUSES)
    return {
        "list_page_ms": _time(lambda: queries.list_page(limit=51), n),
        "list_page_2_ms": _time(
            lambda: queries.list_page(limit=51, after=(now_ms() - 3_600_000, "")), n
        ),
        "metrics_ms": _time(lambda: queries.queue_stats(QUEUES), n),
        "dead_letter_ms": _time(lambda: failures.page(dead, limit=51), n),
    }


def run(rows: int, max_age_hours: float, batch: int, samples: int) -> dict[str, Any]:
    bench = Bench(
        os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL), Path(tempfile.mkdtemp()), False
    )
    try:
        url = bench.new_database("retention")
        base = now_ms()
        progress(f"seeding {rows:,} workflows")
        seconds = seed_workflows(url, lo=0, hi=rows, base_ms=base)
        with connect(url) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(_STEPS)
            conn.commit()
        with connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) dbos.operation_outputs")
        progress(f"seeded in {seconds:.0f}s (+ steps): {count_by_status(url)}")
        engine = create_engine(url, pool_size=4)
        queries, failures = WorkflowQueries(engine), FailureQueries(engine)
        with connect(url) as conn:
            in_flight_before = conn.execute(_IN_FLIGHT).fetchall()
            total_before = conn.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()
        before = measure(queries, failures, samples)
        progress(f"before: {before}")

        cutoff = now_ms() - int(max_age_hours * 3600 * 1000)
        probes: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                queries.list_page(limit=51)
                probes.append(time.perf_counter() - started)
                stop.wait(0.05)

        prober = threading.Thread(target=probe)
        prober.start()
        started = time.monotonic()
        deleted = batches = 0
        while True:
            done = RetentionQueries(engine).run(cutoff, batch=batch, max_batches=100)
            deleted += done.deleted
            batches += done.batches
            if not done.more:
                break
        took = time.monotonic() - started
        stop.set()
        prober.join()
        progress(f"retention deleted {deleted:,} in {took:.1f}s ({batches} batches)")
        after = measure(queries, failures, samples)
        with connect(url, autocommit=True) as conn:
            for table in (
                "workflow_status",
                "workflow_events",
                "workflow_input",
                "workflow_output",
                "operation_outputs",
            ):
                conn.execute(f"VACUUM (ANALYZE) dbos.{table}")
        vacuumed = measure(queries, failures, samples)
        with connect(url) as conn:
            in_flight_after = conn.execute(_IN_FLIGHT).fetchall()
            orphans = {
                t: int(conn.execute(_ORPHANS.format(t=t)).fetchone()[0])  # type: ignore[index]
                for t in (
                    "workflow_input",
                    "workflow_output",
                    "operation_outputs",
                    "workflow_events",
                )
            }
            left_old = conn.execute(
                "SELECT count(*) FROM dbos.workflow_status WHERE completed_at < %s "
                "AND status IN ('SUCCESS','ERROR','CANCELLED','MAX_RECOVERY_ATTEMPTS_EXCEEDED')",
                (cutoff,),
            ).fetchone()
            total_after = conn.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()
        engine.dispose()
        return {
            "rows": rows,
            "rows_before": total_before[0] if total_before else None,
            "rows_after": total_after[0] if total_after else None,
            "deleted": deleted,
            "retention_s": took,
            "deleted_per_s": deleted / took if took else None,
            "batch": batch,
            "probe_during_ms": summarize_ms(probes) if probes else None,
            "before": before,
            "after": after,
            "after_vacuum": vacuumed,
            "in_flight_rows": len(in_flight_before),
            "in_flight_unchanged": in_flight_before == in_flight_after,
            "orphans": orphans,
            "old_finished_left": left_old[0] if left_old else None,
        }
    finally:
        bench.close()


def _print(result: dict[str, Any]) -> None:
    print(
        f"rows {result['rows_before']:,} -> {result['rows_after']:,}: deleted "
        f"{result['deleted']:,} in {result['retention_s']:.1f} s "
        f"({result['deleted_per_s']:,.0f}/s, batches of {result['batch']})"
    )
    print(
        "query            before p50/p95 ms   after p50/p95 ms   after vacuum   "
        "p50 ratio (after vacuum / before)"
    )
    for key in ("list_page_ms", "list_page_2_ms", "metrics_ms", "dead_letter_ms"):
        b, a, v = result["before"][key], result["after"][key], result["after_vacuum"][key]
        print(
            f"{key:16} {b['p50_ms']:7.2f} / {b['p95_ms']:7.2f}   "
            f"{a['p50_ms']:7.2f} / {a['p95_ms']:7.2f}"
            f"   {v['p50_ms']:7.2f} / {v['p95_ms']:7.2f}   {v['p50_ms'] / b['p50_ms']:.2f}"
        )
    d = result["probe_during_ms"]
    if d:
        print(
            f"list page while retention ran: p50 {d['p50_ms']:.2f} ms, p95 {d['p95_ms']:.2f} ms, "
            f"max {d['max_ms']:.2f} ms ({d['n']:.0f} probes)"
        )
    print(
        f"in flight: {result['in_flight_rows']} rows, unchanged: {result['in_flight_unchanged']}; "
        f"orphans: {result['orphans']}; old finished left: {result['old_finished_left']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--max-age-hours", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    _print(run(args.rows, args.max_age_hours, args.batch, args.samples))


if __name__ == "__main__":
    main()
