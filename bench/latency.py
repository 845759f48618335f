"""Enqueue-to-start latency on an idle queue, and what an idle worker costs the database.

Latency: one worker at the default polling interval; workflows arrive one at a time at random
(Poisson) moments, a few per second, so the queue stays idle (far below worker_concurrency). The
latency of each is started_at_epoch_ms - created_at from its row (both written on this machine).

Idle cost: our worker and a bare DBOS worker run side by side, each on its own database, same
queue settings, nothing enqueued. Two counts per database over the same window:
- SQL statements, from the server log: `log_statement = 'all'` is set on the throwaway databases
  only (ALTER DATABASE ... SET), and the lines of those databases are counted. BEGIN, COMMIT and
  ROLLBACK are counted apart from the statements that do work.
- transactions (xact_commit + xact_rollback deltas in pg_stat_database), which needs no log access.
Then a few 10-step workflows go through each, to count the statements one workflow costs.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.common import (
    Bench,
    Proc,
    api_request,
    connect,
    db_name,
    enqueue_backlog,
    enqueue_client,
    enqueue_request,
    progress,
    summarize_ms,
)
from bench.statements import StatementLog, backend_pids, count_statements
from bench.workers import CONCURRENCY, wait_done

DEFAULT_POLLING_SEC = 1.0  # WORKER_POLLING_INTERVAL_SECONDS default


def enqueue_to_start(bench: Bench) -> dict[str, Any]:
    seconds = 12.0 if bench.quick else 30.0
    rate = 4.0  # arrivals per second
    url = bench.new_database("latency")
    workers = bench.start_workers(url, 1, concurrency=CONCURRENCY, polling_sec=DEFAULT_POLLING_SEC)
    client = enqueue_client(url, pool_size=2)
    request = api_request(1, 0.0)
    rng = random.Random(7)
    count = 0
    try:
        time.sleep(2.0)  # past DBOS's first polls after launch
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(rng.expovariate(rate))
            enqueue_request(client, request)
            count += 1
        wait_done(url, count, timeout=60)
        with connect(url) as conn:
            rows = conn.execute(
                "SELECT started_at_epoch_ms - created_at FROM dbos.workflow_status"
            ).fetchall()
        workers[0].sample_rss()
    finally:
        client.destroy()
        bench.stop_all(workers, "worker (idle / latency)")
        bench.drop_database(url)
    latencies = [int(r[0]) / 1000.0 for r in rows]
    out = {
        "polling_interval_sec": DEFAULT_POLLING_SEC,
        "arrivals_per_s": rate,
        "seconds": seconds,
        **summarize_ms(latencies),
        # Uniform arrival over a poll period: expect about half a period on average.
        "expected_mean_ms": DEFAULT_POLLING_SEC * 1000.0 / 2,
    }
    progress(
        f"latency: enqueue-to-start p50 {out['p50_ms']:.0f} ms p99 {out['p99_ms']:.0f} ms "
        f"over {count} workflows"
    )
    return out


PER_WORKFLOW_SAMPLE = 5  # 10-step, zero-wait demo workflows run through each idle worker


def idle_cost(bench: Bench) -> dict[str, Any]:
    """Both workers idle over the same window; then a few workflows through each."""
    seconds = 12.0 if bench.quick else 30.0
    urls = {"ours": bench.new_database("idle_ours"), "bare": bench.new_database("idle_bare")}
    names = {k: db_name(u) for k, u in urls.items()}
    log = StatementLog(bench, names)
    ours: list[Proc] = []
    bare: list[Proc] = []
    try:
        ours = bench.start_workers(
            urls["ours"], 1, concurrency=CONCURRENCY, polling_sec=DEFAULT_POLLING_SEC
        )
        bare = bench.start_workers(
            urls["bare"], 1, concurrency=CONCURRENCY, polling_sec=DEFAULT_POLLING_SEC, bare=True
        )
        time.sleep(5.0)  # past start-up (migrations check, recovery, first heartbeats)
        elapsed, entries = log.watch_idle(seconds, "two idle workers")

        # A few workflows through each. The bench's own connections (enqueue, checks) are left
        # out by keeping only the statements of the worker's backends, taken after the window.
        offset = log.offset()
        t2 = time.monotonic()
        for url in urls.values():
            enqueue_backlog(url, PER_WORKFLOW_SAMPLE, num_steps=10, step_seconds=0.0, threads=1)
        time.sleep(4.0)
        pids = {k: backend_pids(bench.admin_url, n) for k, n in names.items()}
        busy_seconds = time.monotonic() - t2
        busy_text = log.read_from(offset)
        for url in urls.values():
            wait_done(url, PER_WORKFLOW_SAMPLE, timeout=60)
    finally:
        bench.stop_all(ours, "worker (idle)")
        bench.stop_all(bare, "bare DBOS worker (idle)")
        for url in urls.values():
            bench.drop_database(url)
    out: dict[str, Any] = {
        "polling_interval_sec": DEFAULT_POLLING_SEC,
        "seconds": elapsed,
        "log_file": str(log.path) if log.path else None,
    }
    for kind, name in names.items():
        entry = entries[kind]
        if log.path:
            busy = count_statements(busy_text, {name}, pids[kind])[name]
            idle_rate = entry["statements_per_s"]
            entry["statements_per_workflow"] = (
                sum(busy.values()) - idle_rate * busy_seconds
            ) / PER_WORKFLOW_SAMPLE
            entry["transactions_per_workflow"] = (
                busy.get("BEGIN", 0) - entry["begins_per_s"] * busy_seconds
            ) / PER_WORKFLOW_SAMPLE
        out[kind] = entry
    if log.path:
        out["ratio_statements"] = out["ours"]["statements_per_s"] / max(
            out["bare"]["statements_per_s"], 1e-9
        )
    out["ratio_transactions"] = out["ours"]["transactions_per_s"] / max(
        out["bare"]["transactions_per_s"], 1e-9
    )
    progress(
        "idle: ours "
        + (f"{out['ours'].get('statements_per_s', float('nan')):.1f} statements/s, ")
        + f"{out['ours']['transactions_per_s']:.1f} transactions/s; bare DBOS "
        + (f"{out['bare'].get('statements_per_s', float('nan')):.1f} statements/s, ")
        + f"{out['bare']['transactions_per_s']:.1f} transactions/s"
    )
    return out


def run(bench: Bench) -> dict[str, Any]:
    return {"enqueue_to_start": enqueue_to_start(bench), "idle": idle_cost(bench)}
