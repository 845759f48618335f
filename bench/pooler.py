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

from bench.common import (
    Bench,
    api_request,
    connect,
    cpu_seconds,
    db_name,
    enqueue_request,
    median,
    progress,
)
from bench.report import Row
from bench.workers import timings, wait_done
from services.common.names import APP_NAME
from tests.pgbouncer import PgBouncer

WORKERS = 4
CONCURRENCY = 10
# PgBouncer's default_pool_size: tight (the 8 pinned LISTEN sessions + 8 to share), and about what
# the direct workers hold (so only the cost of a client session per checkout remains).
POOL_SIZES = (16, 40)
NUM_STEPS = 5
ENQUEUER = "qw_bench_enqueue"  # application_name of the bench's own connections


def _backends(admin_url: str, database: str) -> dict[str, int]:
    """Client backends connected to `database` by application_name (PgBouncer's show "" once its
    server_reset_query has run), the bench's own left out (and autovacuum, which shows too)."""
    with connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND backend_type = 'client backend' AND application_name <> %s GROUP BY 1",
            (database, ENQUEUER),
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _enqueue(url: str, count: int) -> None:
    """The backlog, straight into Postgres in both modes, on connections the sampler ignores."""
    engine = sa.create_engine(
        sa.make_url(url).set(drivername="postgresql+psycopg"),
        pool_size=8,
        connect_args={"application_name": ENQUEUER},
    )
    client = DBOSClient(system_database_engine=engine, application_name=APP_NAME)

    request = api_request(NUM_STEPS, 0.0)

    def one(_: int) -> None:
        enqueue_request(client, request)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))
    finally:
        client.destroy()
        engine.dispose()


def _tagged(url: str) -> str:
    """The bench's own direct connections carry ENQUEUER, so the sampler leaves them out."""
    tagged = sa.make_url(url).update_query_dict({"application_name": ENQUEUER})
    return tagged.render_as_string(hide_password=False)


def one_round(bench: Bench, *, pool_size: int | None, count: int) -> dict[str, float]:
    """pool_size None: direct connections; else through a PgBouncer session pool that size."""
    pooled = pool_size is not None
    url = bench.new_database("pooled" if pooled else "direct")
    database = db_name(url)
    bouncer = PgBouncer(bench.admin_url, pool_size=pool_size) if pool_size else None
    env = {"DATABASE_POOLER": "pgbouncer-session"} if pooled else {}
    worker_url = bouncer.url(url) if bouncer else url
    workers: list[Any] = []
    peaks = {"server": 0, "clients": 0}
    at_peak: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            backends = _backends(bench.admin_url, database)
            if sum(backends.values()) > peaks["server"]:
                peaks["server"] = sum(backends.values())
                at_peak.clear()
                at_peak.update(backends)
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
        bouncer_before = cpu_seconds(bouncer.pid) if bouncer else 0.0
        _enqueue(url, count)
        wait_done(_tagged(url), count, timeout=300)
        cpu = sum(w.cpu_seconds() for w in workers) - cpu_before
        bouncer_cpu = cpu_seconds(bouncer.pid) - bouncer_before if bouncer else 0.0
        progress(f"backends at the peak by application_name: {at_peak}")
        return {
            **timings(_tagged(url)),
            "peak_server_connections": float(peaks["server"]),
            "peak_pooler_clients": float(peaks["clients"]),
            "worker_cpu_ms_per_workflow": cpu * 1000.0 / count,
            "pgbouncer_cpu_ms_per_workflow": bouncer_cpu * 1000.0 / count,
        }
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join(5)
        try:
            bench.stop_all(workers)
        finally:
            if bouncer is not None:
                bouncer.stop()
        bench.drop_database(url)


def run(bench: Bench) -> dict[str, Any]:
    count = 400 if bench.quick else 800
    rounds = 2 if bench.quick else 3
    configs: list[int | None] = [None, *POOL_SIZES]
    runs: dict[str, list[dict[str, float]]] = {_label(c): [] for c in configs}
    for r in range(rounds):
        for pool_size in configs if r % 2 == 0 else list(reversed(configs)):
            t = one_round(bench, pool_size=pool_size, count=count)
            runs[_label(pool_size)].append(t)
            progress(
                f"pooler round {r + 1}/{rounds} {_label(pool_size)}: "
                f"{t['throughput_per_s']:.1f} wf/s, peak {t['peak_server_connections']:.0f} "
                f"Postgres connections ({t['peak_pooler_clients']:.0f} pooler clients), "
                f"worker CPU {t['worker_cpu_ms_per_workflow']:.2f} ms/wf"
            )
    keys = (
        "throughput_per_s",
        "peak_server_connections",
        "peak_pooler_clients",
        "worker_cpu_ms_per_workflow",
        "pgbouncer_cpu_ms_per_workflow",
    )
    direct = runs[_label(None)]
    return {
        "workers": WORKERS,
        "worker_concurrency": CONCURRENCY,
        "num_steps": NUM_STEPS,
        "workflows_per_round": count,
        "rounds": rounds,
        "pool_sizes": list(POOL_SIZES),
        "median": {
            label: {k: median([x[k] for x in xs]) for k in keys} for label, xs in runs.items()
        },
        # Per round, against the direct run of the same round.
        "throughput_ratios": {
            _label(size): [
                p["throughput_per_s"] / d["throughput_per_s"]
                for p, d in zip(runs[_label(size)], direct, strict=True)
            ]
            for size in POOL_SIZES
        },
        "runs": runs,
    }


def _label(pool_size: int | None) -> str:
    return "direct" if pool_size is None else f"pgbouncer pool {pool_size}"


def rows(p: dict[str, Any]) -> list[Row]:
    d = p["median"]["direct"]
    shape = (
        f"{p['workers']} workers x {p['worker_concurrency']}, {p['num_steps']}-step no-wait "
        f"workflows, median of {p['rounds']} rounds"
    )
    out = []
    for size in p["pool_sizes"]:
        label = _label(size)
        q = p["median"][label]
        cpu = q["worker_cpu_ms_per_workflow"] + q["pgbouncer_cpu_ms_per_workflow"]
        out += [
            Row(
                "Pooler",
                f"peak Postgres connections, {label} (session mode) vs direct ({shape}; "
                f"{q['peak_pooler_clients']:.0f} pooler clients at peak)",
                f"{q['peak_server_connections']:.0f}",
                f"{d['peak_server_connections']:.0f}",
                q["peak_server_connections"] / d["peak_server_connections"],
                f"<= {size}",
                q["peak_server_connections"] <= size,
            ),
            Row(
                "Pooler",
                f"throughput, {label} vs direct (per-round ratios "
                + ", ".join(f"{r:.2f}" for r in p["throughput_ratios"][label])
                + ")",
                f"{q['throughput_per_s']:.1f} wf/s",
                f"{d['throughput_per_s']:.1f} wf/s",
                q["throughput_per_s"] / d["throughput_per_s"],
            ),
            Row(
                "Pooler",
                f"CPU per workflow, ms, {label}: workers + PgBouncer vs direct workers "
                f"(PgBouncer's share {q['pgbouncer_cpu_ms_per_workflow']:.2f})",
                f"{cpu:.2f}",
                f"{d['worker_cpu_ms_per_workflow']:.2f}",
                cpu / d["worker_cpu_ms_per_workflow"],
            ),
        ]
    return out
