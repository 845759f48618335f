"""List a page of 50 workflows with progress, at 10k, 100k and 1M rows, vs the seed's pattern.

Ours: GET /api/workflows?limit=50 over HTTP (one keep-alive connection, sequential requests) and
WorkflowQueries.list_page called directly (as the route does: limit + 1 rows, one statement).
Seed: client.list_workflows(name="workflow", sort_desc=True), then client.get_event(id,
"workflow_progress", timeout_seconds=0) for every row, called directly (no HTTP, which only
flatters the seed), at 10k rows. Measurements alternate in blocks so noise hits all alike.

At the largest size this phase also times GET /metrics: one API with METRICS_CACHE_SECONDS=0
(every scrape runs the queue query) and one with the default cache.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any

from bench.common import LOOPBACK, Bench, progress, summarize_ms
from bench.seed_rows import count_by_status, now_ms, seed_workflows
from services.common.names import PROGRESS_EVENT
from services.common.sql import WorkflowQueries, create_engine
from services.common.workflow_types import QUEUES as KNOWN_QUEUES


class HttpTimer:
    """Sequential GETs over one keep-alive connection; times each until the body is read."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)

    def get(self, path: str) -> tuple[float, int, bytes]:
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.conn.request("GET", path)
                resp = self.conn.getresponse()
                body = resp.read()
                return time.perf_counter() - started, resp.status, body
            except (http.client.RemoteDisconnected, ConnectionError):
                # uvicorn closes a keep-alive connection idle for 5 s: reconnect, time again.
                self.conn.close()
                self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def _check_page(status: int, body: bytes) -> str | None:
    """None if the body is a page of 50 with the seed's fields; else what is wrong."""
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    items = json.loads(body)
    if len(items) != 50:
        return f"expected 50 items, got {len(items)}"
    missing = {"workflow_id", "workflow_status", "steps_completed", "num_steps"} - set(items[0])
    return f"missing fields {sorted(missing)}" if missing else None


def _time_http(
    timer: HttpTimer, path: str, n: int, *, check: bool
) -> tuple[list[float], str | None]:
    samples: list[float] = []
    for _ in range(n):
        elapsed, status, body = timer.get(path)
        if check:
            problem = _check_page(status, body)
            if problem is not None:
                return samples, problem
        elif status != 200:
            return samples, f"HTTP {status}: {body[:200]!r}"
        samples.append(elapsed)
    return samples, None


def _time_calls(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def seed_pattern(client: Any) -> int:
    """The seed's list endpoint, minus HTTP: list everything, then one get_event per row."""
    statuses = []
    for wf in client.list_workflows(name="workflow", sort_desc=True):
        progress_event = client.get_event(wf.workflow_id, PROGRESS_EVENT, timeout_seconds=0)
        statuses.append(
            {
                "workflow_id": wf.workflow_id,
                "workflow_status": wf.status,
                "steps_completed": progress_event.get("steps_completed")
                if progress_event
                else None,
                "num_steps": progress_event.get("num_steps") if progress_event else None,
            }
        )
    return len(statuses)


def run(bench: Bench) -> dict[str, Any]:
    from dbos import DBOSClient

    sizes = [10_000, 100_000] if bench.quick else [10_000, 100_000, 1_000_000]
    n = 60 if bench.quick else 200  # samples per measurement and size
    block = 20
    seed_iterations = 2 if bench.quick else 5
    url = bench.new_database("list")
    base = now_ms() - 60_000
    queries = WorkflowQueries(create_engine(url, pool_size=2))
    result: dict[str, Any] = {
        "settings": {
            "samples_per_measurement": n,
            "seed_pattern_iterations": seed_iterations,
            "http": "one keep-alive connection, sequential requests",
            "row_mix": "newest 200 ENQUEUED, next 50 PENDING, "
            "then 97% SUCCESS / 2% ERROR / 1% CANCELLED",
        },
        "sizes": {},
    }
    api = cached_api = None
    seeded = 0
    try:
        for size in sizes:
            progress(f"list: seeding rows {seeded:,}..{size:,}")
            seed_sec = seed_workflows(url, lo=seeded, hi=size, base_ms=base)
            seeded = size
            progress(f"list: {size:,} rows seeded in {seed_sec:.1f}s")
            if api is None:
                api, port = bench.start_api("api-list", url, METRICS_CACHE_SECONDS="0")
                timer = HttpTimer(port)
            entry: dict[str, Any] = {"seed_seconds": seed_sec, "statuses": count_by_status(url)}
            page = "/api/workflows?limit=50"
            filtered = "/api/workflows?limit=50&status=ERROR"
            # Warm-up (plan cache, connection pools, shared buffers).
            _time_http(timer, page, 5, check=False)
            _time_calls(lambda: queries.list_page(limit=51), 5)

            http_s: list[float] = []
            direct_s: list[float] = []
            filt_s: list[float] = []
            seed_s: list[float] = []
            errors: dict[str, str] = {}
            seed_client = None
            if size == 10_000:
                seed_client = DBOSClient(system_database_url=url)  # the seed's client
                seed_pattern(seed_client)  # warm-up
            for b in range(n // block):
                s, err = _time_http(timer, page, block, check=True)
                http_s += s
                if err:
                    errors["http_page"] = err
                direct_s += _time_calls(lambda: queries.list_page(limit=51), block)
                s, err = _time_http(timer, filtered, block // 2, check=False)
                filt_s += s
                if err:
                    errors["http_filtered"] = err
                if seed_client is not None and b < seed_iterations:
                    started = time.perf_counter()
                    rows = seed_pattern(seed_client)
                    seed_s.append(time.perf_counter() - started)
                    progress(f"list: seed pattern over {rows:,} rows took {seed_s[-1]:.2f}s")
            if seed_client is not None:
                seed_client.destroy()
            entry["http_page"] = summarize_ms(http_s)
            entry["direct_list_page"] = summarize_ms(direct_s)
            entry["http_filtered_status_error"] = summarize_ms(filt_s)
            if seed_s:
                entry["seed_pattern"] = summarize_ms(seed_s)
            if errors:
                entry["errors"] = errors
                for k, v in errors.items():
                    progress(f"list: {k} FAILED at {size:,}: {v}")
            progress(
                f"list at {size:,}: HTTP p50 {entry['http_page']['p50_ms']:.2f} ms "
                f"p95 {entry['http_page']['p95_ms']:.2f} ms; list_page p50 "
                f"{entry['direct_list_page']['p50_ms']:.2f} ms"
            )
            result["sizes"][str(size)] = entry
            api.sample_rss()

        # /metrics at the largest size: without the cache (the query every scrape), and with it.
        progress(f"metrics: scraping /metrics at {seeded:,} rows")
        cached_api, cached_port = bench.start_api("api-metrics-cached", url)
        cached_timer = HttpTimer(cached_port)
        scrapes = 40 if bench.quick else 100
        _time_http(timer, "/metrics", 3, check=False)
        _time_http(cached_timer, "/metrics", 3, check=False)
        nocache_s: list[float] = []
        cached_s: list[float] = []
        query_s: list[float] = []
        for _ in range(scrapes // 10):
            nocache_s += _time_http(timer, "/metrics", 10, check=False)[0]
            cached_s += _time_http(cached_timer, "/metrics", 10, check=False)[0]
            query_s += _time_calls(lambda: queries.queue_stats(KNOWN_QUEUES), 10)
        result["metrics"] = {
            "rows": seeded,
            "in_flight_rows": count_by_status(url).get("ENQUEUED", 0)
            + count_by_status(url).get("PENDING", 0),
            "scrape_no_cache": summarize_ms(nocache_s),
            "scrape_cached": summarize_ms(cached_s),
            "queue_stats_query_direct": summarize_ms(query_s),
            "cached_setting": "METRICS_CACHE_SECONDS default (2)",
        }
        progress(
            f"metrics: no cache p50 {result['metrics']['scrape_no_cache']['p50_ms']:.2f} ms, "
            f"cached p50 {result['metrics']['scrape_cached']['p50_ms']:.2f} ms"
        )
        timer.close()
        cached_timer.close()
    finally:
        queries.engine.dispose()
        if api is not None:
            bench.stop(api, "api (list + metrics load)")
        if cached_api is not None:
            bench.stop(cached_api, "api (metrics, cached)")
        bench.drop_database(url)
    return result
