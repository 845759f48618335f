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
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from bench.common import (
    Bench,
    Proc,
    api_like_options,
    connect,
    db_name,
    enqueue_backlog,
    enqueue_client,
    progress,
    summarize_ms,
)
from bench.workers import CONCURRENCY, wait_done

DEFAULT_POLLING_SEC = 1.0  # WORKER_POLLING_INTERVAL_SECONDS default


def enqueue_to_start(bench: Bench) -> dict[str, Any]:
    seconds = 12.0 if bench.quick else 30.0
    rate = 4.0  # arrivals per second
    url = bench.new_database("latency")
    workers = bench.start_workers(url, 1, concurrency=CONCURRENCY, polling_sec=DEFAULT_POLLING_SEC)
    client = enqueue_client(url, pool_size=2)
    rng = random.Random(7)
    count = 0
    try:
        time.sleep(2.0)  # past DBOS's first polls after launch
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(rng.expovariate(rate))
            client.enqueue(api_like_options(1), 1, 0.0)
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


def _server_log(conn: psycopg.Connection[Any]) -> Path | None:
    """The server's log file, if this process can read it."""
    row = conn.execute("SELECT pg_current_logfile()").fetchone()
    candidates: list[Path] = []
    if row and row[0]:
        data_dir = conn.execute("SHOW data_directory").fetchone()
        path = Path(str(row[0]))
        if not path.is_absolute() and data_dir is not None:
            path = Path(str(data_dir[0])) / path
        candidates.append(path)
    # Debian's default: no logging collector, stderr redirected by pg_ctlcluster.
    candidates += sorted(
        Path("/var/log/postgresql").glob("postgresql-*-main.log"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in candidates:
        try:
            with path.open("rb"):
                return path
        except OSError:
            continue
    return None


_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}
# Debian's log_line_prefix is '%m [%p] %q%u@%d ': the pid and the database are on every line.
_STATEMENT = re.compile(
    r"(?:\[(?P<pid>\d+)\] )?\S*@(?P<db>\S+) LOG:  (?:statement|execute [^:]*): (?P<sql>.*)$"
)
PER_WORKFLOW_SAMPLE = 5  # 10-step, zero-wait demo workflows run through each idle worker


def _count_statements(
    text: str, databases: set[str], pids: set[int] | None = None
) -> dict[str, Counter[str]]:
    """Statements logged per database (only from `pids`, when given and the log shows pids)."""
    counts: dict[str, Counter[str]] = {d: Counter() for d in databases}
    for line in text.splitlines():
        m = _STATEMENT.search(line)
        if m is None or m.group("db") not in counts:
            continue
        if pids is not None and m.group("pid") and int(m.group("pid")) not in pids:
            continue
        sql = " ".join(m.group("sql").split())[:90]
        counts[m.group("db")][sql] += 1
    return counts


def _xacts(admin_url: str, names: list[str]) -> dict[str, int]:
    with connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = ANY(%s)",
            (names,),
        ).fetchall()
    return {str(d): int(n) for d, n in rows}


def _backend_pids(admin_url: str, name: str) -> set[int]:
    with connect(admin_url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
        return {int(r[0]) for r in rows}


def _read_from(path: Path | None, offset: int) -> str:
    if path is None:
        return ""
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _summarize(c: Counter[str], seconds: float) -> dict[str, Any]:
    control = sum(n for sql, n in c.items() if sql.upper() in _CONTROL)
    pings = c.get(";", 0)  # SQLAlchemy's pool_pre_ping: an empty statement per checkout
    total = sum(c.values())
    return {
        "statements": total,
        "statements_per_s": total / seconds,
        "begins_per_s": c.get("BEGIN", 0) / seconds,
        "pre_pings_per_s": pings / seconds,
        "work_statements_per_s": (total - control - pings) / seconds,
        "top_statements_per_s": {sql: round(n / seconds, 2) for sql, n in c.most_common(8)},
    }


def idle_cost(bench: Bench) -> dict[str, Any]:
    """Both workers idle over the same window; then a few workflows through each."""
    seconds = 12.0 if bench.quick else 30.0
    urls = {"ours": bench.new_database("idle_ours"), "bare": bench.new_database("idle_bare")}
    names = {k: db_name(u) for k, u in urls.items()}
    for name in names.values():
        bench.admin_exec(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    with connect(bench.admin_url) as conn:
        log_path = _server_log(conn)
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
        offset = log_path.stat().st_size if log_path else 0
        x0 = _xacts(bench.admin_url, list(names.values()))
        t0 = time.monotonic()
        progress(f"idle: watching two idle workers for {seconds:.0f}s")
        time.sleep(seconds)
        x1 = _xacts(bench.admin_url, list(names.values()))
        elapsed = time.monotonic() - t0
        idle_text = _read_from(log_path, offset)

        # A few workflows through each. The bench's own connections (enqueue, checks) are left
        # out by keeping only the statements of the worker's backends, taken after the window.
        offset = log_path.stat().st_size if log_path else 0
        t2 = time.monotonic()
        for url in urls.values():
            enqueue_backlog(url, PER_WORKFLOW_SAMPLE, num_steps=10, step_seconds=0.0, threads=1)
        time.sleep(4.0)
        pids = {k: _backend_pids(bench.admin_url, n) for k, n in names.items()}
        busy_seconds = time.monotonic() - t2
        busy_text = _read_from(log_path, offset)
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
        "log_file": str(log_path) if log_path else None,
    }
    idle_counts = _count_statements(idle_text, set(names.values()))
    for kind, name in names.items():
        entry: dict[str, Any] = {
            "transactions_per_s": (x1.get(name, 0) - x0.get(name, 0)) / elapsed,
        }
        if log_path:
            entry.update(_summarize(idle_counts[name], elapsed))
            busy = _count_statements(busy_text, {name}, pids[kind])[name]
            idle_rate = entry["statements_per_s"]
            entry["statements_per_workflow"] = (
                sum(busy.values()) - idle_rate * busy_seconds
            ) / PER_WORKFLOW_SAMPLE
            entry["transactions_per_workflow"] = (
                busy.get("BEGIN", 0) - entry["begins_per_s"] * busy_seconds
            ) / PER_WORKFLOW_SAMPLE
        out[kind] = entry
    if log_path:
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
