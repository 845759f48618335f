"""What live streams cost the database, 1 vs 100 open, and how late a step's progress arrives.

One API (default STREAM_POLL_SECONDS) and one worker on a fresh Postgres database; ten demo
workflows run throughout (0.37 s steps, so steps and polls do not line up). Two scenarios, each
with 1 and then 100 streams open for the same window:
- pages: the web page's stream (GET /api/workflows/events?limit=50), what every open tab holds;
- watchers: `queue-worker watch` streams (GET /api/workflows/{id}/events), spread over the ten.
Counted per window: the poller's SQL statements (queue_worker_stream_poll_statements_total on the
API's /metrics: every statement the streams cost) and the whole database's transactions
(pg_stat_database, the worker's included). Target: 100 streams cost at most 2x one.
Latency: for every progress value a client received, its arrival time minus the DBOS event's
write (operation_outputs.completed_at_epoch_ms of that DBOS.setEvent: the k-th one of a demo
workflow publishes steps_completed = k), all on this machine's clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from bench.common import Bench, Proc, connect, db_name, progress, summarize_ms
from bench.report import Row

WORKFLOWS = 10
STEP_SECONDS = 0.37
COUNTS = (1, 100)
POLL_SECONDS = 0.5  # STREAM_POLL_SECONDS, the default
WRITES = """
SELECT workflow_uuid, completed_at_epoch_ms FROM dbos.operation_outputs
WHERE function_name = 'DBOS.setEvent' AND workflow_uuid = ANY(%s)
ORDER BY workflow_uuid, function_id
"""


def _metric(base: str, name: str) -> float:
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise RuntimeError(f"{name} is not on {base}/metrics")


def _transactions(bench: Bench, url: str) -> int:
    with connect(bench.admin_url) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (db_name(url),),
        ).fetchone()
    return int(row[0]) if row else 0


async def _listen(
    client: httpx.AsyncClient, path: str, seen: dict[tuple[str, int], float], opened: asyncio.Event
) -> None:
    """Reads one stream, noting when each (workflow, steps_completed) first arrived."""
    async with client.stream("GET", path) as resp:
        opened.set()
        data = ""
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                data = line[6:]
            elif not line and data:
                now = time.time()
                body = json.loads(data)
                rows = body.get("workflows", []) if isinstance(body, dict) else []
                if isinstance(body, dict) and "workflow_status" in body:
                    rows = [body]
                for wf in rows:
                    if isinstance(wf.get("steps_completed"), int):
                        seen.setdefault((wf["workflow_id"], wf["steps_completed"]), now)
                data = ""


async def _window(
    bench: Bench, base: str, url: str, paths: list[str], seconds: float
) -> dict[str, Any]:
    seens: list[dict[tuple[str, int], float]] = [{} for _ in paths]
    limits = httpx.Limits(max_connections=len(paths) + 10)
    timeout = httpx.Timeout(10.0, read=60.0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        events = [asyncio.Event() for _ in paths]
        tasks = [
            asyncio.create_task(_listen(client, p, s, e))
            for p, s, e in zip(paths, seens, events, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
        await asyncio.sleep(2.0)  # connected and served: now the steady state
        started_wall = time.time()
        subscribers = _metric(base, "queue_worker_stream_subscribers")
        stmts0 = _metric(base, "queue_worker_stream_poll_statements_total")
        polls0 = _metric(base, "queue_worker_stream_polls_total")
        xact0, t0 = _transactions(bench, url), time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        stmts = _metric(base, "queue_worker_stream_poll_statements_total") - stmts0
        polls = _metric(base, "queue_worker_stream_polls_total") - polls0
        xacts = _transactions(bench, url) - xact0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "streams": len(paths),
        "subscribers_seen": subscribers,
        "poller_statements_per_s": stmts / elapsed,
        "polls_per_s": polls / elapsed,
        "db_transactions_per_s": xacts / elapsed,
        "seen": seens,
        "started_wall": started_wall,
    }


def _delays(url: str, seens: list[dict[tuple[str, int], float]], since: float) -> list[float]:
    """Only events written in the steady window: a snapshot's older values are not delays."""
    ids = sorted({wid for seen in seens for wid, _ in seen})
    written: dict[tuple[str, int], float] = {}
    with connect(url) as conn:
        index: dict[str, int] = {}
        for wid, completed_ms in conn.execute(WRITES, (ids,)):
            k = index.get(wid, 0)
            index[wid] = k + 1
            if completed_ms is not None:
                written[(wid, k)] = completed_ms / 1000.0
    return [
        arrived - written[key]
        for seen in seens
        for key, arrived in seen.items()
        if key in written and written[key] >= since
    ]


def _wait_poller_idle(base: str) -> None:
    deadline = time.monotonic() + 60
    while _metric(base, "queue_worker_stream_poller_running") != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the stream poller did not stop without listeners")
        time.sleep(0.5)


def _enqueue(base: str, n: int, num_steps: int) -> list[str]:
    ids = []
    for _ in range(n):
        resp = httpx.post(
            base + "/api/workflows",
            json={"num_steps": num_steps, "step_seconds": STEP_SECONDS},
            timeout=10,
        )
        resp.raise_for_status()
        ids.append(resp.json()["workflow_id"])
    return ids


def run(bench: Bench) -> dict[str, Any]:
    seconds = 5.0 if bench.quick else 15.0
    url = bench.new_database("streams")
    procs: list[Proc] = []
    try:
        api, port = bench.start_api("api-streams", url, STREAM_POLL_SECONDS=str(POLL_SECONDS))
        procs.append(api)
        procs += bench.start_workers(url, 1, concurrency=WORKFLOWS, polling_sec=1.0)
        base = f"http://127.0.0.1:{port}"
        results: dict[str, Any] = {"window_s": seconds}
        for scenario in ("pages", "watchers"):
            for count in COUNTS:
                # Enough steps to outlast the window, started fresh so every step is live.
                ids = _enqueue(base, WORKFLOWS, int((seconds + 8) / STEP_SECONDS))
                paths = [
                    "/api/workflows/events?limit=50"
                    if scenario == "pages"
                    else f"/api/workflows/{ids[i % WORKFLOWS]}/events"
                    for i in range(count)
                ]
                # A fresh poller: topics of the previous window (lists linger 10 s) gone.
                _wait_poller_idle(base)
                progress(f"streams: {scenario}, {count} open, {seconds:.0f} s")
                window = asyncio.run(_window(bench, base, url, paths, seconds))
                delays = _delays(url, window.pop("seen"), window.pop("started_wall"))
                window["delay"] = summarize_ms(delays)
                window["delay"]["n"] = len(delays)
                results[f"{scenario}_{count}"] = window
                for wid in ids:
                    httpx.post(f"{base}/api/workflows/{wid}/cancel", timeout=10)
        return results
    finally:
        bench.stop_all(procs, "api+worker (streams)")


def rows(r: dict[str, Any]) -> list[Row]:
    out = []
    for scenario, what in (("pages", "page list streams"), ("watchers", "workflow streams")):
        one, many = r[f"{scenario}_1"], r[f"{scenario}_100"]
        ratio = many["poller_statements_per_s"] / max(one["poller_statements_per_s"], 1e-9)
        out.append(
            Row(
                "Streams",
                f"{what}: poller SQL statements/s, 100 open vs 1",
                f"{many['poller_statements_per_s']:.2f}/s",
                f"{one['poller_statements_per_s']:.2f}/s",
                ratio,
                "<= 2x",
                ratio <= 2.0,
            )
        )
        out.append(
            Row(
                "Streams",
                f"{what}: whole database transactions/s (worker included), 100 open vs 1",
                f"{many['db_transactions_per_s']:.1f}/s",
                f"{one['db_transactions_per_s']:.1f}/s",
                many["db_transactions_per_s"] / max(one["db_transactions_per_s"], 1e-9),
            )
        )
        for count, w in ((1, one), (100, many)):
            d = w["delay"]
            out.append(
                Row(
                    "Streams",
                    f"{what}: step's event write to client p50 / p95, {count} open "
                    f"({d['n']:.0f} arrivals) vs the poll interval",
                    f"{d['p50_ms']:.0f} / {d['p95_ms']:.0f} ms",
                    f"{POLL_SECONDS * 1000:.0f} ms",
                    d["p50_ms"] / (POLL_SECONDS * 1000),
                )
            )
    return out
