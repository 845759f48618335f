"""Figures for the metrics and autoscaling work (docs/metrics.md), measured side by side in one run.

    .venv/bin/python -m bench.metrics_figures            # everything, ~5 minutes
    .venv/bin/python -m bench.metrics_figures --skip-slow # without the production-timing HPA run
    .venv/bin/python -m bench.metrics_figures --admin-url postgresql://postgres@127.0.0.1:55432/postgres

1. API /metrics scrape time (METRICS_CACHE_SECONDS=0, so every scrape runs the SQL count) with
   0, 100k and 1M rows in dbos.workflow_status, seeded with INSERT ... SELECT generate_series into
   a throwaway database: mostly finished history plus a small backlog, and 1M rows of which 100k
   wait. Measured right after the insert (ANALYZE only) and after VACUUM (visibility map set).
2. Time from a backlog appearing (first enqueue answered 202) to the reproduced HPA setting the
   desired replicas, and to those workers being ready: with 1 s scrape/evaluation/sync (the tests'
   compressed timing) and with 15 s scrape/evaluation/sync (Prometheus Operator-like defaults and
   the controller's default sync period).
3. Drain time of 300 short workflows (2 steps of 0.25 s) with a fixed single worker vs autoscaled
   (1..4 workers, concurrency 5), each on its own fresh database.

Everything runs on 127.0.0.1; every database created here is dropped and every process stopped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa
from dbos import DBOS

from services.common.names import WORKFLOW_QUEUE
from tests.autoscale.harness import KubeStateEmulator, ReproducedHpa, WorkerPool, load_hpa_spec
from tests.autoscale.hpa import DEFAULT_SYNC_PERIOD_SEC
from tests.metrics.prometheus import PrometheusServer
from tests.metrics.scrape import parse, value
from tests.support import Stack, enqueue, service_env, wait_for


# An admin URL of the Postgres to measure on (--admin-url). A dedicated server gives steadier
# figures than one shared with other test suites (max_connections, CPU).
class Conf:
    admin_url = os.environ.get(
        "QW_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


WORKFLOWS, NUM_STEPS, STEP_SECONDS = 300, 2, 0.25
CONCURRENCY, MAX_REPLICAS = 5, 4


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"qw_metrics_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(Conf.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = sa.make_url(Conf.admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        DBOS.migrate(url)
        yield url
    finally:
        with psycopg.connect(Conf.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------------ scrape time


_SEED = """
INSERT INTO dbos.workflow_status
  (workflow_uuid, status, name, queue_name, created_at, updated_at, completed_at,
   recovery_attempts, application_name, application_version)
SELECT 'seed-' || %(offset)s + g,
       CASE WHEN g %% %(every)s = 0 THEN 'ENQUEUED' ELSE 'SUCCESS' END,
       'workflow', %(queue)s,
       %(now)s - g, %(now)s - g, %(now)s - g, 1, 'queue-worker', 'seeded'
FROM generate_series(1, %(n)s) AS g
"""


def seed(url: str, offset: int, n: int, enqueued_every: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            _SEED,
            {
                "offset": offset,
                "n": n,
                "every": enqueued_every,
                "queue": WORKFLOW_QUEUE,
                "now": int(time.time() * 1000),
            },
        )
        conn.execute("ANALYZE dbos.workflow_status")


def vacuum(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE dbos.workflow_status")


def plan(url: str) -> str:
    """The count's plan: root scan node and heap fetches (index-only scans avoid the heap)."""
    sql = (
        "EXPLAIN (ANALYZE, FORMAT JSON) SELECT queue_name, status, count(*), min(created_at)"
        " FROM dbos.workflow_status WHERE status IN ('ENQUEUED','PENDING')"
        " AND queue_name IS NOT NULL GROUP BY queue_name, status"
    )
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    node = row[0][0]["Plan"]
    while "Plans" in node and node["Node Type"] not in ("Index Only Scan", "Seq Scan"):
        node = node["Plans"][0]
    fetches = node.get("Heap Fetches")
    return f"{node['Node Type']}" + (f", {fetches} heap fetches" if fetches is not None else "")


def scrape_times(base_url: str, n: int = 40) -> tuple[float, float, float]:
    """(p50 ms, p95 ms, last SQL ms) of GET /metrics."""
    times = []
    text = ""
    with httpx.Client(timeout=30) as client:
        client.get(f"{base_url}/metrics")  # warm the connection pool
        for _ in range(n):
            started = time.perf_counter()
            resp = client.get(f"{base_url}/metrics")
            times.append((time.perf_counter() - started) * 1000)
            text = resp.text
    sql = value(parse(text), "queue_worker_queue_stats_query_duration_seconds") or 0.0
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], sql * 1000


def bench_scrape(workdir: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with fresh_database() as url:
        stack = Stack(url, workdir / "scrape", METRICS_CACHE_SECONDS="0")
        (workdir / "scrape").mkdir()
        try:
            stack.start_api()
            total, waiting = 0, 0

            def measure(label: str) -> None:
                p50, p95, sql = scrape_times(stack.base_url)
                rows.append(
                    {
                        "rows": total,
                        "waiting": waiting,
                        "state": label,
                        "p50_ms": round(p50, 2),
                        "p95_ms": round(p95, 2),
                        "sql_ms": round(sql, 2),
                        "plan": plan(url),
                    }
                )
                log(f"scrape {total:>9,} rows, {waiting:>7,} waiting, {label}: {rows[-1]}")

            measure("empty")
            for target, every in ((100_000, 1000), (1_000_000, 1000)):
                seed(url, total, target - total, every)
                waiting += (target - total) // every
                total = target
                measure("after insert + ANALYZE")
                vacuum(url)
                measure("after VACUUM")
            # A big backlog: 100k more waiting rows (1.1M in all).
            seed(url, total, 100_000, 1)
            waiting += 100_000
            total += 100_000
            measure("after insert + ANALYZE")
            vacuum(url)
            measure("after VACUUM")
        finally:
            stack.stop()
    return rows


# ------------------------------------------------------------------------------ autoscaling


def _connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection, retried while the shared server is at max_connections (other suites)."""
    for attempt in range(30):
        try:
            return psycopg.connect(url)
        except psycopg.OperationalError as exc:
            if "too many clients" not in str(exc) or attempt == 29:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def db_done(url: str, ids: list[str]) -> tuple[int, float | None]:
    """(workflows SUCCESS, seconds from the first created_at to the last completed_at)."""
    with _connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), min(created_at), max(completed_at)"
            " FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)",
            (ids,),
        ).fetchone()
    assert row is not None
    done, first, last = int(row[0]), row[1], row[2]
    span = (last - first) / 1000 if done == len(ids) and first and last else None
    return done, span


def enqueue_backlog(stack: Stack) -> tuple[float, list[str]]:
    with stack.client() as client:
        first = enqueue(client, NUM_STEPS, step_seconds=STEP_SECONDS)
        at = time.monotonic()
        ids = [first] + [
            enqueue(client, NUM_STEPS, step_seconds=STEP_SECONDS) for _ in range(WORKFLOWS - 1)
        ]
    return at, ids


def bench_fixed_single(workdir: Path) -> float:
    with fresh_database() as url:
        (workdir / "fixed").mkdir()
        stack = Stack(url, workdir / "fixed", WORKER_CONCURRENCY=str(CONCURRENCY))
        try:
            stack.start_api()
            stack.start_worker()
            _, ids = enqueue_backlog(stack)
            span = wait_for(lambda: db_done(url, ids)[1], timeout=600, interval=0.2, what="drain")
        finally:
            stack.stop()
    log(f"fixed single worker drained {WORKFLOWS} in {span:.1f}s")
    return float(span)


def bench_autoscaled(workdir: Path, label: str, interval_sec: float) -> dict[str, float]:
    """The reproduced HPA with scrape = evaluation = sync = interval_sec (controller durations
    scaled by interval_sec / 15 s); stops once the backlog has drained."""
    scale = interval_sec / DEFAULT_SYNC_PERIOD_SEC
    spec, _ = load_hpa_spec(
        {
            "worker.concurrency": str(CONCURRENCY),
            "worker.autoscaling.minReplicas": "1",
            "worker.autoscaling.maxReplicas": str(MAX_REPLICAS),
        }
    )
    spec = replace(spec, min_replicas=1, max_replicas=MAX_REPLICAS).scaled(scale)
    concurrency = spec.target_milli // 1000
    with fresh_database() as url:
        work = workdir / label
        work.mkdir()
        stack = Stack(url, work)
        kube_state = KubeStateEmulator(spec)
        interval = f"{interval_sec:g}s"
        prometheus = PrometheusServer(
            work,
            static_jobs={"queue-worker-api": [f"127.0.0.1:{stack.api_port}"]},
            scrape_interval=interval,
            evaluation_interval=interval,
        )
        env = service_env(url, WORKER_CONCURRENCY=str(concurrency), LOG_FORMAT="json")
        pool = WorkerPool(env, work, prometheus)
        hpa = ReproducedHpa(spec, prometheus, pool, kube_state, sync_period_sec=interval_sec)
        try:
            kube_state.start()
            prometheus.start()
            stack.start_api()
            pool.scale_to(1)
            hpa.run(
                lambda s: s.decision.metric_milli == 0 and pool.ready_count() == 1,
                timeout=120 + 4 * interval_sec,
            )
            backlog_at, ids = enqueue_backlog(stack)
            expected = MAX_REPLICAS
            drained_span: float | None = None
            reached_at: float | None = None
            ready_at: float | None = None
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                started = time.monotonic()
                step = hpa.sync(started)
                if reached_at is None and step.replicas_after >= expected:
                    reached_at = started
                if reached_at is not None and ready_at is None:
                    # Readiness is polled every 0.2 s between syncs so it is not rounded up.
                    while time.monotonic() - started < interval_sec:
                        if pool.ready_count() >= expected:
                            ready_at = time.monotonic()
                            break
                        time.sleep(0.2)
                _, span = db_done(url, ids)
                if span is not None:
                    drained_span = span
                    break
                time.sleep(max(0.0, interval_sec - (time.monotonic() - started)))
            assert drained_span is not None, "the backlog did not drain"
        finally:
            pool.close()
            stack.stop()
            prometheus.stop()
            kube_state.stop()
    result = {
        "interval_sec": interval_sec,
        "to_desired_sec": -1.0 if reached_at is None else reached_at - backlog_at,
        "to_ready_sec": -1.0 if ready_at is None else ready_at - backlog_at,
        "drain_sec": drained_span,
        "peak_replicas": float(max(s.replicas_after for s in hpa.steps)),
    }
    log(f"autoscaled ({label}): {result}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--skip-slow", action="store_true", help="skip the 15 s-interval autoscaling run"
    )
    parser.add_argument("--admin-url", default=Conf.admin_url, help=f"default {Conf.admin_url}")
    args = parser.parse_args(argv)
    Conf.admin_url = args.admin_url
    with tempfile.TemporaryDirectory(prefix="qw-metrics-bench-") as tmp:
        workdir = Path(tmp)
        scrape = bench_scrape(workdir)
        fixed = bench_fixed_single(workdir)
        fast = bench_autoscaled(workdir, "autoscaled-1s", 1.0)
        slow = None if args.skip_slow else bench_autoscaled(workdir, "autoscaled-15s", 15.0)

    print("\n## API /metrics scrape time (METRICS_CACHE_SECONDS=0: every scrape runs the count)\n")
    print("| rows in workflow_status | waiting | state | p50 ms | p95 ms | SQL ms | plan |")
    print("|---:|---:|---|---:|---:|---:|---|")
    for r in scrape:
        print(
            f"| {r['rows']:,} | {r['waiting']:,} | {r['state']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['sql_ms']} | {r['plan']} |"
        )
    print(
        f"\n## Backlog of {WORKFLOWS} workflows ({NUM_STEPS} steps x {STEP_SECONDS}s), "
        f"concurrency {CONCURRENCY}, 1..{MAX_REPLICAS} workers\n"
    )
    print(
        "| run | scrape = eval = sync | to desired replicas | to all ready | drain |"
        " speed-up vs fixed |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| fixed single worker | - | - | - | {fixed:.1f}s | 1.00x |")
    for run in [fast] + ([slow] if slow is not None else []):
        print(
            f"| autoscaled | {run['interval_sec']:g}s | {run['to_desired_sec']:.1f}s | "
            f"{run['to_ready_sec']:.1f}s | {run['drain_sec']:.1f}s | "
            f"{fixed / run['drain_sec']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
