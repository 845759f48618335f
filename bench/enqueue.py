"""Enqueue throughput: our API vs DBOSClient.enqueue called directly vs the seed's server pattern,
and POST /api/workflows/batch (BATCH_ITEMS workflows a request) in workflows per second against
the direct client's one-at-a-time rate.

The two HTTP servers get the same wrk load (fixed connections and duration, loopback only); the
direct baseline runs the same number of threads calling DBOSClient.enqueue in a loop, with the
same options the API uses. Rounds alternate (rotating the order) so drift and noise from other
work on the machine hit all three alike. No worker runs: the rows stay ENQUEUED.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    LOOPBACK,
    Bench,
    Proc,
    api_request,
    enqueue_client,
    enqueue_request,
    free_port,
    median,
    module_argv,
    percentile,
    progress,
)

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"num_steps": 10}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%.0f,"p99_us":%.0f}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


BATCH_ITEMS = 100

BATCH_SCRIPT = WRK_SCRIPT.replace(
    """wrk.body = '{"num_steps": 10}'""",
    'wrk.body = \'{"workflows": ['
    + ", ".join(['{"input": {"num_steps": 10}}'] * BATCH_ITEMS)
    + "]}'",
)


def run_wrk(script: Path, url: str, *, connections: int, seconds: float) -> dict[str, float]:
    """One wrk run; requests/s and latency percentiles from the Lua `done` hook."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(
        data[k]
        for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return {
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "requests": float(data["requests"]),
        "errors": float(errors),
        "p50_ms": data["p50_us"] / 1000.0,
        "p99_ms": data["p99_us"] / 1000.0,
        "wrk_cpu_ms_per_request": wrk_cpu * 1000.0 / max(data["requests"], 1),
    }


def run_direct(url: str, *, threads: int, seconds: float) -> dict[str, float]:
    """`threads` threads calling DBOSClient.enqueue back to back for `seconds`."""
    client = enqueue_client(url, pool_size=10)  # the API's default API_DB_POOL_SIZE
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = 0.0
    request = api_request(10, 1.0)  # parsed once: the timed part is the enqueue itself

    def loop(i: int) -> None:
        start.wait()
        mine = latencies[i]
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                enqueue_request(client, request)
            except Exception:
                errors[i] += 1
                continue
            mine.append(time.perf_counter() - t)

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    try:
        for w in workers:
            w.start()
        cpu_before = time.process_time()  # this process: the enqueue threads and nothing else
        began = time.monotonic()
        deadline = began + seconds
        start.wait()
        for w in workers:
            w.join()
        elapsed = time.monotonic() - began
        cpu = time.process_time() - cpu_before
    finally:
        client.destroy()
    flat = [x for xs in latencies for x in xs]
    return {
        "rps": len(flat) / elapsed,
        "requests": float(len(flat)),
        "errors": float(sum(errors)),
        "p50_ms": percentile(flat, 50) * 1000.0,
        "p99_ms": percentile(flat, 99) * 1000.0,
        "cpu_ms_per_request": cpu * 1000.0 / max(len(flat), 1),
    }


def run_wrk_on(
    proc: Proc, script: Path, url: str, *, connections: int, seconds: float
) -> dict[str, float]:
    """wrk against one server process, with the CPU that process spent per request."""
    cpu_before = proc.cpu_seconds()
    result = run_wrk(script, url, connections=connections, seconds=seconds)
    cpu = proc.cpu_seconds() - cpu_before
    return {**result, "cpu_ms_per_request": cpu * 1000.0 / max(result["requests"], 1.0)}


def run(bench: Bench) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing; install it with `apt-get install -y wrk`")
    connections = 8
    seconds = 4.0 if bench.quick else 8.0
    rounds = 2 if bench.quick else 3
    url = bench.new_database("enqueue")
    script = bench.workdir / "enqueue.lua"
    script.write_text(WRK_SCRIPT)
    batch_script = bench.workdir / "enqueue-batch.lua"
    batch_script.write_text(BATCH_SCRIPT)

    progress("enqueue: starting our API and the seed-style server")
    api, api_port = bench.start_api("api-enqueue", url)
    seed_port = free_port()
    seed = bench.start(
        "seed-server",
        module_argv("bench.seed_server", "--port", str(seed_port)),
        {"DBOS_SYSTEM_DATABASE_URL": url},
    )
    seed.wait_http_ok(f"http://{LOOPBACK}:{seed_port}/healthz")
    api_url = f"http://{LOOPBACK}:{api_port}/api/workflows"
    seed_url = f"http://{LOOPBACK}:{seed_port}/workflows"
    batch_url = f"http://{LOOPBACK}:{api_port}/api/workflows/batch"

    # Warm-up: connection pools, imports, JIT-less but cache-warm Postgres.
    run_wrk(script, api_url, connections=connections, seconds=2)
    run_wrk(script, seed_url, connections=connections, seconds=2)
    run_wrk(batch_script, batch_url, connections=connections, seconds=2)
    run_direct(url, threads=connections, seconds=1)

    kinds = ["api", "direct", "seed", "batch"]
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for r in range(rounds):
        order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
        for kind in order:
            if kind == "api":
                s = run_wrk_on(api, script, api_url, connections=connections, seconds=seconds)
            elif kind == "batch":
                s = run_wrk_on(
                    api, batch_script, batch_url, connections=connections, seconds=seconds
                )
                # Workflows, not requests: each request carries BATCH_ITEMS.
                s["requests_http"] = s["requests"]
                s["rps"] *= BATCH_ITEMS
                s["requests"] *= BATCH_ITEMS
                s["cpu_ms_per_request"] /= BATCH_ITEMS
            elif kind == "seed":
                s = run_wrk_on(seed, script, seed_url, connections=connections, seconds=seconds)
            else:
                s = run_direct(url, threads=connections, seconds=seconds)
            samples[kind].append(s)
            progress(
                f"enqueue round {r + 1}/{rounds} {kind:6s}: {s['rps']:7.1f} req/s "
                f"p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms "
                f"cpu {s['cpu_ms_per_request']:.2f} ms/req errors {s['errors']:.0f}"
            )
    api.sample_rss()
    bench.stop(api, "api (enqueue load)")
    bench.stop(seed, "seed server (enqueue load)")
    bench.drop_database(url)

    def agg(kind: str) -> dict[str, Any]:
        runs = samples[kind]
        return {
            "rps_median": median([s["rps"] for s in runs]),
            "p50_ms_median": median([s["p50_ms"] for s in runs]),
            "p99_ms_median": median([s["p99_ms"] for s in runs]),
            "cpu_ms_per_request_median": median([s["cpu_ms_per_request"] for s in runs]),
            "wrk_cpu_ms_per_request_median": median(
                [s.get("wrk_cpu_ms_per_request", 0.0) for s in runs]
            ),
            "errors": sum(s["errors"] for s in runs),
            "rounds": runs,
        }

    result = {k: agg(k) for k in kinds}
    api_rps = result["api"]["rps_median"]
    # Ratios per round (same round, adjacent in time), then the median of those.
    per_round_direct = [
        a["rps"] / d["rps"] for a, d in zip(samples["api"], samples["direct"], strict=True)
    ]
    per_round_seed = [
        a["rps"] / s["rps"] for a, s in zip(samples["api"], samples["seed"], strict=True)
    ]
    per_round_batch = [
        b["rps"] / d["rps"] for b, d in zip(samples["batch"], samples["direct"], strict=True)
    ]
    return {
        "settings": {
            "connections_or_threads": connections,
            "seconds_per_round": seconds,
            "rounds": rounds,
            "tool": 'wrk -t1 (Lua POST body {"num_steps": 10}); direct: Python threads',
            "batch_items": BATCH_ITEMS,
            "worker_running": False,
        },
        **result,
        "ratio_api_vs_direct": median(per_round_direct),
        "ratio_api_vs_seed": median(per_round_seed),
        "ratio_batch_vs_direct": median(per_round_batch),
        "ratio_api_vs_direct_of_medians": api_rps / result["direct"]["rps_median"],
    }
