"""Workers that wake on work: ours (NOTIFY and slot wake-ups) beside bare DBOS and procrastinate.

Every figure is measured in this run for three workers on their own fresh databases:
- ours: `queue-worker worker` at the default 1 s polling interval, wake-ups on (the default on
  Postgres), with bench/trivial.py's do-nothing workflow registered (bench/trivial_worker.py);
- bare DBOS: bench/bare_worker.py, same queue settings, polling only;
- procrastinate (PyPI, in its own venv .venv-procrastinate, never a project dependency): an async
  do-nothing task, its worker at concurrency 10 with LISTEN/NOTIFY on (bench/procrastinate_app.py).

Sections:
- enqueue-to-start on an idle queue: Poisson arrivals (4/s), one worker; from the rows
  (started_at_epoch_ms - created_at; procrastinate: its 'started' - 'deferred' events). Two
  rounds of 15 s each, in rotating order, samples pooled.
- drain: a backlog of trivial workflows enqueued first, then one worker at concurrency 10 started;
  rate = count / (last completion - first start), from the rows; CPU per workflow = the worker
  process's CPU time over the drain / count. Three rounds in rotating order, medians reported (this
  machine's load swings). Bare DBOS at the default 1 s is poll-bound (10/s), so it drains fewer
  workflows, once; bare DBOS at 0.1 s polling runs the rounds too.
- idle cost: the three workers idle side by side; SQL statements/s from the server log
  (log_statement = 'all' on these throwaway databases only) and transactions/s.
- the trigger's enqueue cost: DBOSClient.enqueue (8 threads; no worker, so a backlog after the
  first second) and raw INSERTs (pgbench, 8 clients) into dbos.workflow_status, each with the
  trigger vs with it dropped, rounds alternating, a LISTEN session open. pgbench twice: every
  insert notifying (the worst case: workers keeping up) and a backlog (inserts skip the NOTIFY).
- 4 workers: a backlog drained by 4 of our workers at concurrency 10; the most workflows any one
  of them had in flight at once, from the rows (claim to completion per executor_id).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    Bench,
    Proc,
    connect,
    db_name,
    enqueue_client,
    median,
    progress,
    summarize_ms,
    wait_for,
)
from bench.enqueue import run_direct
from bench.statements import StatementLog
from bench.trivial import TRIVIAL_WORKFLOW
from bench.workers import CONCURRENCY, CONNECTIONS_PER_WORKER, wait_done
from services.common.names import WORKFLOW_QUEUE
from services.common.wake_sql import TRIGGER_INSERT, TRIGGER_UPDATE

ROOT = Path(__file__).resolve().parent.parent
PROCRASTINATE = "procrastinate==3.10.0"
PROCRASTINATE_VENV = ROOT / ".venv-procrastinate"
PROCRASTINATE_APP = ROOT / "bench" / "procrastinate_app.py"
DEFAULT_POLLING_SEC = 1.0
ARRIVALS_PER_S = 4.0

KINDS = ("ours", "bare", "procrastinate")


def procrastinate_python() -> str:
    """The separate venv's interpreter, created with pip on first use."""
    python = PROCRASTINATE_VENV / "bin" / "python"
    if not python.exists():
        progress(f"creating {PROCRASTINATE_VENV.name} with {PROCRASTINATE}")
        subprocess.run([sys.executable, "-m", "venv", str(PROCRASTINATE_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", PROCRASTINATE, "psycopg[binary]"],
            check=True,
        )
    return str(python)


def _procrastinate(url: str, *args: str) -> list[str]:
    return [procrastinate_python(), str(PROCRASTINATE_APP), url, *args]


def _trivial_options() -> dict[str, Any]:
    return {"queue_name": WORKFLOW_QUEUE, "workflow_name": TRIVIAL_WORKFLOW}


def _new_db(bench: Bench, kind: str, label: str) -> str:
    url = bench.new_database(f"{label}_{kind[:4]}")
    if kind == "procrastinate":
        subprocess.run(_procrastinate(url, "schema"), check=True, capture_output=True, timeout=120)
    return url


def _start(bench: Bench, kind: str, url: str, *, polling_sec: float = DEFAULT_POLLING_SEC) -> Proc:
    if kind == "procrastinate":
        proc = bench.start(
            f"procrastinate-{db_name(url)}", _procrastinate(url, "worker", str(CONCURRENCY)), {}
        )
        proc.wait_log("procrastinate worker ready")
        time.sleep(1.0)  # past its start-up (LISTEN, first fetch)
        return proc
    return bench.start_workers(
        url,
        1,
        concurrency=CONCURRENCY,
        polling_sec=polling_sec,
        bare=kind == "bare",
        trivial=kind == "ours",
    )[0]


def _enqueue_backlog(kind: str, url: str, count: int) -> None:
    if kind == "procrastinate":
        subprocess.run(
            _procrastinate(url, "defer", str(count)), check=True, capture_output=True, timeout=600
        )
        return
    client = enqueue_client(url, pool_size=8)
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: client.enqueue(_trivial_options()), range(count)))
    finally:
        client.destroy()


def _wait_done(kind: str, url: str, count: int, timeout: float) -> None:
    if kind != "procrastinate":
        wait_done(url, count, timeout)
        return

    def done() -> bool:
        with connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            ).fetchone()
        return row is not None and int(row[0]) >= count

    wait_for(done, timeout=timeout, what=f"{count} procrastinate jobs")


def _rows(kind: str, url: str) -> list[tuple[float, float, float, str]]:
    """(enqueued, started, finished, executor) in epoch seconds, for every finished item."""
    with connect(url) as conn:
        if kind == "procrastinate":
            rows = conn.execute(
                "SELECT extract(epoch FROM min(at) FILTER (WHERE type = 'deferred')),"
                " extract(epoch FROM min(at) FILTER (WHERE type = 'started')),"
                " extract(epoch FROM min(at) FILTER (WHERE type = 'succeeded')), 'procrastinate'"
                " FROM procrastinate_events GROUP BY job_id"
                " HAVING count(*) FILTER (WHERE type = 'succeeded') > 0"
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT created_at / 1000.0, started_at_epoch_ms / 1000.0, completed_at / 1000.0,"
                " executor_id FROM dbos.workflow_status WHERE status = 'SUCCESS'"
            ).fetchall()
    return [(float(a), float(b), float(c), str(d)) for a, b, c, d in rows]


# -- enqueue-to-start on an idle queue -------------------------------------------------------------


def _arrivals(kind: str, url: str, seconds: float) -> int:
    if kind == "procrastinate":
        subprocess.run(
            _procrastinate(url, "arrivals", str(seconds), str(ARRIVALS_PER_S)),
            check=True,
            capture_output=True,
            timeout=seconds + 120,
        )
        with connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
        return int(row[0]) if row else 0
    client = enqueue_client(url, pool_size=2)
    rng = random.Random(7)
    count = 0
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(rng.expovariate(ARRIVALS_PER_S))
            client.enqueue(_trivial_options())
            count += 1
    finally:
        client.destroy()
    return count


def latency_samples(bench: Bench, kind: str, seconds: float) -> list[float]:
    """Enqueue-to-start of each arrival, in seconds."""
    url = _new_db(bench, kind, "lat")
    proc = _start(bench, kind, url)
    try:
        time.sleep(1.5)
        count = _arrivals(kind, url, seconds)
        _wait_done(kind, url, count, timeout=60)
        rows = _rows(kind, url)
    finally:
        bench.stop(proc)
        bench.drop_database(url)
    samples = [started - enqueued for enqueued, started, _, _ in rows]
    out = summarize_ms(samples)
    progress(
        f"latency {kind}: enqueue-to-start p50 {out['p50_ms']:.1f} ms p99 {out['p99_ms']:.1f} ms "
        f"({count} arrivals)"
    )
    return samples


def latency(bench: Bench, rounds: int) -> dict[str, Any]:
    """Rounds rotate the order of the three, so the machine's load swings hit each alike; the
    samples of all rounds are pooled."""
    seconds = 12.0 if bench.quick else 15.0
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    for r in range(rounds):
        for kind in KINDS[r % 3 :] + KINDS[: r % 3]:
            samples[kind] += latency_samples(bench, kind, seconds)
    return {k: {**summarize_ms(v), "rounds": rounds} for k, v in samples.items()}


# -- drain -----------------------------------------------------------------------------------------


def drain(bench: Bench, kind: str, count: int, polling_sec: float) -> dict[str, Any]:
    url = _new_db(bench, kind, "drain")
    proc: Proc | None = None
    try:
        _enqueue_backlog(kind, url, count)
        proc = _start(bench, kind, url, polling_sec=polling_sec)
        cpu0 = proc.cpu_seconds()
        _wait_done(kind, url, count, timeout=count / 5.0 + 120)
        cpu = proc.cpu_seconds() - cpu0
        rows = _rows(kind, url)
    finally:
        if proc is not None:
            bench.stop(proc)
        bench.drop_database(url)
    first = min(r[1] for r in rows)
    last = max(r[2] for r in rows)
    out = {
        "workflows": len(rows),
        "polling_interval_sec": polling_sec if kind != "procrastinate" else None,
        "makespan_s": last - first,
        "per_s": len(rows) / (last - first),
        "cpu_ms_per_workflow": cpu * 1000.0 / count,
        "max_in_flight": max_in_flight(rows),
    }
    progress(
        f"drain {kind} (poll {polling_sec}s): {out['per_s']:.1f}/s over {count}, "
        f"{out['cpu_ms_per_workflow']:.2f} ms CPU each"
    )
    return out


def max_in_flight(rows: list[tuple[float, float, float, str]]) -> dict[str, int]:
    """Per executor, the most items between start and finish at one instant. At equal times a
    finish counts before a start (a slot freed and refilled in the same millisecond)."""
    events: dict[str, list[tuple[float, int]]] = {}
    for _, started, finished, executor in rows:
        events.setdefault(executor, []).extend([(started, 1), (finished, -1)])
    out = {}
    for executor, evs in events.items():
        evs.sort()
        now = peak = 0
        for _, delta in evs:
            now += delta
            peak = max(peak, now)
        out[executor] = peak
    return out


# -- idle cost -------------------------------------------------------------------------------------


def idle(bench: Bench) -> dict[str, Any]:
    seconds = 12.0 if bench.quick else 30.0
    urls = {kind: _new_db(bench, kind, "idle") for kind in KINDS}
    log = StatementLog(bench, {k: db_name(u) for k, u in urls.items()})
    procs: list[Proc] = []
    try:
        procs = [_start(bench, kind, urls[kind]) for kind in KINDS]
        time.sleep(5.0)  # past start-up
        elapsed, entries = log.watch_idle(seconds, "three idle workers")
    finally:
        bench.stop_all(procs)
        for url in urls.values():
            bench.drop_database(url)
    out: dict[str, Any] = {"seconds": elapsed, "log_file": str(log.path) if log.path else None}
    out.update(entries)
    progress(
        "idle statements/s: "
        + ", ".join(f"{k} {out[k].get('statements_per_s', float('nan')):.1f}" for k in KINDS)
    )
    return out


# -- the trigger's enqueue cost --------------------------------------------------------------------

# Raw enqueues: one INSERT per transaction. "each": every row on a queue of its own, so every
# insert NOTIFYs (the trigger's worst case: workers keeping up). "backlog": one queue no worker
# runs, so after a second its head has waited long enough that inserts skip the NOTIFY.
_INSERT = (
    "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name) VALUES"
    " (md5(random()::text || clock_timestamp()::text), 'ENQUEUED', 'bench', {queue});\n"
)
_PGBENCH_INSERT = {
    "each": _INSERT.format(queue="md5(random()::text)"),
    "backlog": _INSERT.format(queue="'bench-nobody'"),
}


def _drop_trigger(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        for name in (TRIGGER_INSERT, TRIGGER_UPDATE):
            conn.execute(f"DROP TRIGGER {name} ON dbos.workflow_status")


def _pgbench(url: str, script: Path, seconds: float) -> float:
    out = subprocess.run(
        ["pgbench", "-n", "-c", "8", "-j", "2", "-T", f"{seconds:.0f}", "-f", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("tps = "))
    return float(line.split()[2])


def trigger_cost(bench: Bench) -> dict[str, Any]:
    seconds = 5.0 if bench.quick else 10.0
    rounds = 2 if bench.quick else 3
    urls = {"trigger": bench.new_database("trg_on"), "none": bench.new_database("trg_off")}
    _drop_trigger(urls["none"])
    scripts = {}
    for shape, sql in _PGBENCH_INSERT.items():
        scripts[shape] = bench.workdir / f"insert-{shape}.sql"
        scripts[shape].write_text(sql)
    listeners = [connect(u, autocommit=True) for u in urls.values()]
    for conn in listeners:
        conn.execute("LISTEN queue_worker_wake")
    results: dict[str, dict[str, list[float]]] = {
        m: {"trigger": [], "none": []} for m in ("client", "pgbench_each", "pgbench_backlog")
    }
    try:
        for r in range(rounds):
            order = ("trigger", "none") if r % 2 == 0 else ("none", "trigger")
            for kind in order:
                # A fresh queue per round for the client, so its first rows notify as on an
                # idle queue; no worker runs, so after a second it is a backlog too.
                rps = run_direct(urls[kind], threads=8, seconds=seconds)["rps"]
                results["client"][kind].append(rps)
                for shape in ("each", "backlog"):
                    tps = _pgbench(urls[kind], scripts[shape], seconds)
                    results[f"pgbench_{shape}"][kind].append(tps)
                # Drain what the LISTEN sessions were sent, so their queues never fill.
                for conn in listeners:
                    for _ in conn.notifies(timeout=0.01):
                        pass
            progress(
                f"trigger cost round {r + 1}: "
                + ", ".join(
                    f"{m} {v['trigger'][-1]:.0f} vs {v['none'][-1]:.0f}/s"
                    for m, v in results.items()
                )
            )
    finally:
        for conn in listeners:
            conn.close()
        for url in urls.values():
            bench.drop_database(url)
    return {
        "seconds_per_round": seconds,
        "rounds": rounds,
        "samples": results,
        "median": {m: {k: median(v) for k, v in d.items()} for m, d in results.items()},
    }


# -- 4 workers -------------------------------------------------------------------------------------


def four_workers(bench: Bench, count: int) -> dict[str, Any]:
    url = bench.new_database("four")
    bench.wait_for_connections(4 * CONNECTIONS_PER_WORKER + 10)
    procs: list[Proc] = []
    try:
        _enqueue_backlog("ours", url, count)
        procs = bench.start_workers(
            url, 4, concurrency=CONCURRENCY, polling_sec=DEFAULT_POLLING_SEC, trivial=True
        )
        cpu0 = sum(p.cpu_seconds() for p in procs)
        wait_done(url, count, timeout=count / 5.0 + 120)
        cpu = sum(p.cpu_seconds() for p in procs) - cpu0
        rows = _rows("ours", url)
    finally:
        bench.stop_all(procs)
        bench.drop_database(url)
    first = min(r[1] for r in rows)
    last = max(r[2] for r in rows)
    per_worker: dict[str, int] = {}
    for row in rows:
        per_worker[row[3]] = per_worker.get(row[3], 0) + 1
    peaks = max_in_flight(rows)
    out = {
        "workers": 4,
        "worker_concurrency": CONCURRENCY,
        "workflows": len(rows),
        "per_s": len(rows) / (last - first),
        "cpu_ms_per_workflow": cpu * 1000.0 / count,
        "workflows_per_worker": per_worker,
        "max_in_flight_per_worker": peaks,
        "max_in_flight": max(peaks.values()),
    }
    progress(
        f"4 workers: {out['per_s']:.1f}/s in all, max in flight per worker {peaks} "
        f"(limit {CONCURRENCY})"
    )
    return out


def drains(bench: Bench, rounds: int, count: int) -> dict[str, Any]:
    """Ours, procrastinate and bare DBOS at 0.1 s polling, in rotating order, `rounds` times
    (medians reported; each round's figures kept); bare DBOS at its default 1 s once (it is
    poll-bound: 10/s)."""
    plan = [("ours", DEFAULT_POLLING_SEC), ("procrastinate", DEFAULT_POLLING_SEC), ("bare", 0.1)]
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "procrastinate": [], "bare_fast_poll": []}
    for r in range(rounds):
        for kind, poll in plan[r % 3 :] + plan[: r % 3]:
            key = "bare_fast_poll" if kind == "bare" else kind
            runs[key].append(drain(bench, kind, count, poll))
    out: dict[str, Any] = {}
    for key, samples in runs.items():
        peaks: dict[str, int] = {}
        for x in samples:
            for executor, peak in x["max_in_flight"].items():
                peaks[executor] = max(peaks.get(executor, 0), peak)
        out[key] = {
            "workflows": count,
            "rounds": samples,
            "per_s": median([x["per_s"] for x in samples]),
            "cpu_ms_per_workflow": median([x["cpu_ms_per_workflow"] for x in samples]),
            "max_in_flight": peaks,
        }
    bare_count = 100 if bench.quick else 300
    out["bare"] = drain(bench, "bare", bare_count, DEFAULT_POLLING_SEC)
    return out


def run(bench: Bench) -> dict[str, Any]:
    procrastinate_python()
    count = 500 if bench.quick else 2000
    rounds = 1 if bench.quick else 3
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("latency", lambda: latency(bench, 2 if not bench.quick else 1)),
        ("drain", lambda: drains(bench, rounds, count)),
        ("idle", lambda: idle(bench)),
        ("trigger_cost", lambda: trigger_cost(bench)),
        ("four_workers", lambda: four_workers(bench, count)),
    ]
    out: dict[str, Any] = {"worker_concurrency": CONCURRENCY, "drain_count": count}
    for name, fn in sections:
        progress(f"-- wake: {name}")
        out[name] = fn()
    return out
