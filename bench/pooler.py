"""PgBouncer (session mode, DATABASE_POOLER=pgbouncer-session) against direct connections: the
same workers on the same backlog, alternating rounds in one run.

Measured per round: the most Postgres backends connected to the round's database
(pg_stat_activity, sampled every 20 ms, the bench's own enqueue connections excluded), the
throughput from the rows DBOS wrote, and the CPU the workers (and PgBouncer) spent per workflow:
behind the pooler every checkout opens a client session, which is what this costs.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from dbos import DBOSClient

from bench.common import Bench, api_like_options, connect, cpu_seconds, db_name, median, progress
from bench.report import Row
from bench.workers import timings, wait_done
from services.common.names import APP_NAME
from tests.pgbouncer import PgBouncer

WORKERS = 4
CONCURRENCY = 10
POOL_SIZE = 16  # PgBouncer's default_pool_size: the 8 pinned LISTEN sessions + 8 to share
NUM_STEPS = 5
ENQUEUER = "qw_bench_enqueue"  # application_name of the bench's own connections


def _backends(admin_url: str, database: str) -> int:
    with connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name <> %s",
            (database, ENQUEUER),
        ).fetchone()
    return int(row[0]) if row else 0


def _enqueue(url: str, count: int) -> None:
    """The backlog, straight into Postgres in both modes, on connections the sampler ignores."""
    engine = sa.create_engine(
        sa.make_url(url).set(drivername="postgresql+psycopg"),
        pool_size=8,
        connect_args={"application_name": ENQUEUER},
    )
    client = DBOSClient(system_database_engine=engine, application_name=APP_NAME)

    def one(_: int) -> None:
        options: Any = api_like_options(NUM_STEPS)
        client.enqueue(options, NUM_STEPS, 0.0)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))
    finally:
        client.destroy()
        engine.dispose()


def one_round(bench: Bench, *, pooled: bool, count: int) -> dict[str, float]:
    url = bench.new_database("pooled" if pooled else "direct")
    database = db_name(url)
    bouncer = PgBouncer(bench.admin_url, pool_size=POOL_SIZE) if pooled else None
    env = {"DATABASE_POOLER": "pgbouncer-session"} if pooled else {}
    worker_url = bouncer.url(url) if bouncer else url
    workers: list[Any] = []
    peaks = {"server": 0, "clients": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peaks["server"] = max(peaks["server"], _backends(bench.admin_url, database))
            if bouncer is not None:
                peaks["clients"] = max(peaks["clients"], bouncer.clients(database))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        bench.wait_for_connections(WORKERS * 10 + 20)
        workers = bench.start_workers(
            worker_url, WORKERS, concurrency=CONCURRENCY, polling_sec=1.0, env=env
        )
        sampler.start()
        cpu_before = sum(w.cpu_seconds() for w in workers)
        bouncer_before = cpu_seconds(bouncer.proc.pid) if bouncer else 0.0
        _enqueue(url, count)
        wait_done(url, count, timeout=300)
        cpu = sum(w.cpu_seconds() for w in workers) - cpu_before
        bouncer_cpu = cpu_seconds(bouncer.proc.pid) - bouncer_before if bouncer else 0.0
        return {
            **timings(url),
            "peak_server_connections": float(peaks["server"]),
            "peak_pooler_clients": float(peaks["clients"]),
            "worker_cpu_ms_per_workflow": cpu * 1000.0 / count,
            "pgbouncer_cpu_ms_per_workflow": bouncer_cpu * 1000.0 / count,
        }
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join(5)
        bench.stop_all(workers)
        if bouncer is not None:
            bouncer.stop()
        bench.drop_database(url)


def run(bench: Bench) -> dict[str, Any]:
    count = 400 if bench.quick else 800
    rounds = 2 if bench.quick else 3
    direct: list[dict[str, float]] = []
    pooled: list[dict[str, float]] = []
    for r in range(rounds):
        for use_pooler in (False, True) if r % 2 == 0 else (True, False):
            t = one_round(bench, pooled=use_pooler, count=count)
            (pooled if use_pooler else direct).append(t)
            progress(
                f"pooler round {r + 1}/{rounds} {'pgbouncer' if use_pooler else 'direct'}: "
                f"{t['throughput_per_s']:.1f} wf/s, peak {t['peak_server_connections']:.0f} "
                f"Postgres connections ({t['peak_pooler_clients']:.0f} pooler clients), "
                f"worker CPU {t['worker_cpu_ms_per_workflow']:.2f} ms/wf"
            )

    def med(runs: list[dict[str, float]], key: str) -> float:
        return median([x[key] for x in runs])

    keys = (
        "throughput_per_s",
        "peak_server_connections",
        "peak_pooler_clients",
        "worker_cpu_ms_per_workflow",
        "pgbouncer_cpu_ms_per_workflow",
    )
    return {
        "workers": WORKERS,
        "worker_concurrency": CONCURRENCY,
        "pool_size": POOL_SIZE,
        "num_steps": NUM_STEPS,
        "workflows_per_round": count,
        "rounds": rounds,
        "direct": {k: med(direct, k) for k in keys},
        "pooled": {k: med(pooled, k) for k in keys},
        "throughput_ratios": [
            p["throughput_per_s"] / d["throughput_per_s"]
            for p, d in zip(pooled, direct, strict=True)
        ],
        "runs": {"direct": direct, "pooled": pooled},
    }


def rows(p: dict[str, Any]) -> list[Row]:
    d, q = p["direct"], p["pooled"]
    shape = (
        f"{p['workers']} workers x {p['worker_concurrency']}, {p['num_steps']}-step no-wait "
        f"workflows, PgBouncer session pool {p['pool_size']}, median of {p['rounds']} rounds"
    )
    worker_cpu = q["worker_cpu_ms_per_workflow"] + q["pgbouncer_cpu_ms_per_workflow"]
    return [
        Row(
            "Pooler",
            f"peak Postgres connections, PgBouncer vs direct ({shape}; "
            f"{q['peak_pooler_clients']:.0f} pooler clients at peak)",
            f"{q['peak_server_connections']:.0f}",
            f"{d['peak_server_connections']:.0f}",
            q["peak_server_connections"] / d["peak_server_connections"],
            f"<= pool {p['pool_size']}",
            q["peak_server_connections"] <= p["pool_size"],
        ),
        Row(
            "Pooler",
            "throughput, PgBouncer vs direct (per-round ratios "
            + ", ".join(f"{r:.2f}" for r in p["throughput_ratios"])
            + ")",
            f"{q['throughput_per_s']:.1f} wf/s",
            f"{d['throughput_per_s']:.1f} wf/s",
            q["throughput_per_s"] / d["throughput_per_s"],
        ),
        Row(
            "Pooler",
            "CPU per workflow, ms: workers + PgBouncer vs direct workers "
            f"(PgBouncer's share {q['pgbouncer_cpu_ms_per_workflow']:.2f})",
            f"{worker_cpu:.2f}",
            f"{d['worker_cpu_ms_per_workflow']:.2f}",
            worker_cpu / d["worker_cpu_ms_per_workflow"],
        ),
    ]
