"""Worker throughput: efficiency against the ideal for I/O-bound workflows, and our worker against a
bare DBOS worker for a workflow that does no waiting.

Every run enqueues a backlog with DBOSClient (the options the API uses) into a fresh database and
reads the timing from the rows DBOS wrote (started_at_epoch_ms, completed_at), so neither process
start-up nor the bench's own polling is counted.
"""

from __future__ import annotations

from typing import Any

import psycopg

from bench.common import Bench, connect, enqueue_backlog, median, percentile, progress, wait_for

CONCURRENCY = 10  # WORKER_CONCURRENCY, the project's default
# Measured: one worker process at concurrency 10 holds up to ~16 connections under load.
# The most a worker at CONCURRENCY opens (services/worker/pools.py), for wait_for_connections.
CONNECTIONS_PER_WORKER = 17


def _counts(url: str) -> tuple[int, int]:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'SUCCESS'),"
            " count(*) FILTER (WHERE status IN ('ERROR', 'CANCELLED',"
            " 'MAX_RECOVERY_ATTEMPTS_EXCEEDED'))"
            " FROM dbos.workflow_status"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def wait_done(url: str, count: int, timeout: float) -> None:
    def done() -> bool:
        try:
            ok, failed = _counts(url)
        except psycopg.OperationalError as exc:  # e.g. others' tests took every connection
            progress(f"could not count workflows ({str(exc).strip()[:80]}); retrying")
            return False
        if failed:
            raise RuntimeError(f"{failed} workflows failed in {url}")
        return ok >= count

    wait_for(done, timeout=timeout, interval=0.2, what=f"{count} workflows to succeed")


def timings(url: str) -> dict[str, float]:
    """Makespan and per-workflow figures from the rows themselves (epoch ms)."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT created_at, started_at_epoch_ms, completed_at FROM dbos.workflow_status"
            " WHERE status = 'SUCCESS'"
        ).fetchall()
    created = [int(r[0]) for r in rows]
    started = [int(r[1]) for r in rows]
    completed = [int(r[2]) for r in rows]
    makespan = (max(completed) - min(started)) / 1000.0
    run = [(c - s) / 1000.0 for s, c in zip(started, completed, strict=True)]
    return {
        "workflows": float(len(rows)),
        "makespan_s": makespan,
        "throughput_per_s": len(rows) / makespan,
        "mean_run_s": sum(run) / len(run),
        "enqueue_span_s": (max(created) - min(created)) / 1000.0,
    }


def efficiency_run(
    bench: Bench,
    *,
    replicas: int,
    polling_sec: float,
    num_steps: int,
    step_seconds: float,
    waves: int,
    bare: bool = False,
) -> dict[str, Any]:
    duration = num_steps * step_seconds
    count = replicas * CONCURRENCY * waves
    url = bench.new_database(f"eff{replicas}")
    bench.wait_for_connections(replicas * CONNECTIONS_PER_WORKER + 10)
    workers = bench.start_workers(
        url, replicas, concurrency=CONCURRENCY, polling_sec=polling_sec, bare=bare
    )
    try:
        enqueue_sec = enqueue_backlog(
            url, count, num_steps=num_steps, step_seconds=step_seconds, threads=8
        )
        wait_done(url, count, timeout=waves * duration * 4 + 60)
        t = timings(url)
        for w in workers:
            w.sample_rss()
    finally:
        bench.stop_all(
            workers, "bare DBOS worker (I/O-bound load)" if bare else "worker (I/O-bound load)"
        )
        bench.drop_database(url)
    ideal = replicas * CONCURRENCY / duration
    out = {
        "worker": "bare DBOS" if bare else "ours",
        "replicas": replicas,
        "worker_concurrency": CONCURRENCY,
        "polling_interval_sec": polling_sec,
        "workflow_duration_s": duration,
        "workflows": count,
        "ideal_per_s": ideal,
        "enqueue_seconds": enqueue_sec,
        **t,
        "efficiency": t["throughput_per_s"] / ideal,
        # What each workflow spent beyond its steps' sleeps: DBOS's durable bookkeeping.
        "overhead_per_workflow_s": t["mean_run_s"] - duration,
        "poll_cap_per_s": replicas * CONCURRENCY / polling_sec,
    }
    progress(
        f"efficiency {'bare ' if bare else ''}{replicas} worker(s), poll {polling_sec}s: "
        f"{t['throughput_per_s']:.2f}/s "
        f"of ideal {ideal:.2f}/s = {out['efficiency']:.3f} (mean run {t['mean_run_s']:.2f}s "
        f"for {duration:.2f}s of steps)"
    )
    return out


def nowait_run(
    bench: Bench, *, bare: bool, count: int, num_steps: int, polling_sec: float
) -> dict[str, float]:
    """`count` zero-wait workflows through one worker process, and the CPU it spent on them."""
    url = bench.new_database("bare" if bare else "ours")
    workers: list[Any] = []
    try:
        workers = bench.start_workers(
            url, 1, concurrency=CONCURRENCY, polling_sec=polling_sec, bare=bare
        )
        cpu_before = workers[0].cpu_seconds()
        enqueue_backlog(url, count, num_steps=num_steps, step_seconds=0.0, threads=8)
        wait_done(url, count, timeout=180)
        cpu = workers[0].cpu_seconds() - cpu_before
        workers[0].sample_rss()
        return {**timings(url), "worker_cpu_ms_per_workflow": cpu * 1000.0 / count}
    finally:
        bench.stop_all(
            workers, "bare DBOS worker (no-wait load)" if bare else "worker (no-wait load)"
        )
        bench.drop_database(url)


def run(bench: Bench) -> dict[str, Any]:
    # The seed's shape (10 steps, progress after each) with 0.5 s steps instead of 1 s: long
    # enough that DBOS's per-step bookkeeping (~30 durable writes per workflow) and the wait
    # for the next poll (polling_interval / 2 on average) stay small next to the sleeps, short
    # enough to run 3-5 waves per replica count in a few seconds each.
    num_steps, step_seconds, polling = 10, 0.5, 0.1
    waves = 2 if bench.quick else 3
    # (replicas, polling interval, bare DBOS?) in run order. In the full run, bare DBOS workers
    # run right after ours at 1 and 4 replicas (same load on the machine): how much of any gap
    # to the ideal is DBOS's own; and the default polling interval shows the poll's effect.
    plan = [(1, polling, False), (2, polling, False), (4, polling, False)]
    if not bench.quick:
        plan = [
            (1, polling, False),
            (1, polling, True),
            (2, polling, False),
            (4, polling, False),
            (4, polling, True),
            (1, 1.0, False),
        ]
    runs = [
        efficiency_run(
            bench,
            replicas=replicas,
            polling_sec=polling_sec,
            num_steps=num_steps,
            step_seconds=step_seconds,
            waves=waves,
            bare=use_bare,
        )
        for replicas, polling_sec, use_bare in plan
    ]

    # No waiting at all: DBOS bookkeeping is the whole cost, so any overhead of ours shows.
    nw_count = 150 if bench.quick else 300
    nw_steps = 5
    nw_rounds = 2 if bench.quick else 6
    ours: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    for r in range(nw_rounds):
        for kind in ("ours", "bare") if r % 2 == 0 else ("bare", "ours"):
            t = nowait_run(
                bench, bare=kind == "bare", count=nw_count, num_steps=nw_steps, polling_sec=polling
            )
            (bare if kind == "bare" else ours).append(t)
            progress(
                f"no-wait round {r + 1}/{nw_rounds} {kind}: {t['throughput_per_s']:.1f} "
                f"workflows/s ({nw_count} in {t['makespan_s']:.2f}s)"
            )
    per_round = [o["makespan_s"] / b["makespan_s"] for o, b in zip(ours, bare, strict=True)]
    return {
        "efficiency": {
            "num_steps": num_steps,
            "step_seconds": step_seconds,
            "polling_interval_sec": polling,
            "waves": waves,
            "runs": runs,
        },
        "nowait": {
            "workflows_per_round": nw_count,
            "num_steps": nw_steps,
            "step_seconds": 0.0,
            "polling_interval_sec": polling,
            "worker_concurrency": CONCURRENCY,
            "rounds": nw_rounds,
            "ours": ours,
            "bare": bare,
            "ours_throughput_median": median([t["throughput_per_s"] for t in ours]),
            "bare_throughput_median": median([t["throughput_per_s"] for t in bare]),
            # > 1 means ours took longer; the target is <= 1.05.
            "slowdown_per_round": per_round,
            "slowdown_median": median(per_round),
            "slowdown_worst": percentile(per_round, 100),
            # All rounds together: total makespan of ours over that of bare DBOS.
            "slowdown_total": sum(t["makespan_s"] for t in ours)
            / sum(t["makespan_s"] for t in bare),
            "ours_cpu_ms_per_workflow_median": median(
                [t["worker_cpu_ms_per_workflow"] for t in ours]
            ),
            "bare_cpu_ms_per_workflow_median": median(
                [t["worker_cpu_ms_per_workflow"] for t in bare]
            ),
        },
    }
