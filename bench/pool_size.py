"""Worker connection pools sized to what they use: `python -m bench --only pools`.

One worker runs the same backlog twice per load, once with the DBOS pool the worker now defaults
to (services/worker/pools.py: 4 + ceil(concurrency / 5)) and once with the earlier
max(10, concurrency + 5) as the baseline. Printed per load: throughput and the worker's peak
Postgres connections (sampled from pg_stat_activity every 20 ms), and their ratios new / old.
"""

from __future__ import annotations

import threading
from typing import Any

from bench.common import Bench, connect, db_name, enqueue_backlog, progress
from bench.workers import timings, wait_done
from services.worker.pools import default_dbos_pool_size

# (label, concurrency, workflows, steps, step seconds): a CPU-bound burst (no waits: every
# workflow thread hammers DBOS's writes) and an I/O-bound one (steps that sleep).
LOADS = [
    ("no-wait, concurrency 10", 10, 600, 3, 0.0),
    ("no-wait, concurrency 40", 40, 800, 3, 0.0),
    ("0.2 s steps, concurrency 40", 40, 400, 3, 0.2),
]


class PeakConnections:
    """Samples the connections open to one database until stopped; keeps the peak."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(admin_url, database), daemon=True)
        self._thread.start()

    def _run(self, admin_url: str, database: str) -> None:
        with connect(admin_url, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def one_run(
    bench: Bench, concurrency: int, pool: int, count: int, steps: int, step_s: float
) -> dict[str, float]:
    url = bench.new_database(f"pool{pool}")
    workers = bench.start_workers(
        url, 1, concurrency=concurrency, polling_sec=0.2, env={"WORKER_DB_POOL_SIZE": str(pool)}
    )
    sampler = PeakConnections(bench.admin_url, db_name(url))
    try:
        enqueue_backlog(url, count, num_steps=steps, step_seconds=step_s, threads=4)
        wait_done(url, count, timeout=300)
        result = timings(url)
    finally:
        # The enqueueing client's connections are gone by now; the sampler saw them too, so the
        # peak is the worker's plus at most the client's 4.
        peak = sampler.stop()
        bench.stop_all(workers, f"worker (pool {pool})")
        bench.drop_database(url)
    return {"throughput_per_s": result["throughput_per_s"], "peak_connections": float(peak)}


def run(bench: Bench) -> dict[str, Any]:
    rows = []
    for label, concurrency, count, steps, step_s in LOADS:
        if bench.quick:
            count //= 4
        new_pool = default_dbos_pool_size(concurrency)
        old_pool = max(10, concurrency + 5)
        new = one_run(bench, concurrency, new_pool, count, steps, step_s)
        old = one_run(bench, concurrency, old_pool, count, steps, step_s)
        row = {
            "load": label,
            "new_pool": new_pool,
            "old_pool": old_pool,
            "new": new,
            "old": old,
            "throughput_ratio": new["throughput_per_s"] / old["throughput_per_s"],
            "connections_ratio": new["peak_connections"] / old["peak_connections"],
        }
        progress(
            f"pools {label}: pool {new_pool} {new['throughput_per_s']:.1f}/s, "
            f"{new['peak_connections']:.0f} conns vs pool {old_pool} "
            f"{old['throughput_per_s']:.1f}/s, {old['peak_connections']:.0f} conns: throughput "
            f"x{row['throughput_ratio']:.2f}, connections x{row['connections_ratio']:.2f}"
        )
        rows.append(row)
    return {"loads": rows}
