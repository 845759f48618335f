"""Open-loop enqueue load against a running API, and the evidence that every workflow ran once.

Open loop: request i is due at start + i / rate whatever happened to the earlier ones, and its
latency is measured from that due time, not from when the client got round to sending it. A slow
API therefore shows up as latency (queueing included) instead of silently lowering the rate, which
is what a closed loop of back-to-back requests would do (coordinated omission).

Used by tests/load/test_load.py (asserts) and tests/load/run_load.py (prints the figures).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from services.common.names import DEMO_WORKFLOW, WORKFLOW_QUEUE
from tests.load.http1 import Http1Pool, ProtocolError
from tests.support import Stack

STEP_FUNCTION = "demo_step"  # the demo workflow's step, as DBOS records it in operation_outputs

# Two workers that can keep up with the plans used here: 2 x 10 / 0.1 s is well above 100
# workflows/s (DESIGN.md: a worker's throughput on short workflows is capped near concurrency /
# polling interval). Pools stay small: the test Postgres may be shared (max_connections 100).
LOAD_ENV = {
    "WORKER_CONCURRENCY": "10",
    "WORKER_POLLING_INTERVAL_SECONDS": "0.1",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
    "API_DB_POOL_SIZE": "5",
}


@dataclass(frozen=True)
class LoadPlan:
    rate: float = 60.0  # enqueue requests per second
    duration: float = 20.0  # seconds of sending
    num_steps: int = 2
    step_seconds: float = 0.02
    request_timeout: float = 30.0
    drain_timeout: float = 120.0  # after the last send, for every workflow to finish

    @property
    def requests(self) -> int:
        return math.ceil(self.rate * self.duration)


@dataclass
class EnqueueStats:
    """What the clients saw while sending."""

    planned: int
    latencies: list[float] = field(default_factory=list)  # seconds, due time to response
    lateness: list[float] = field(default_factory=list)  # seconds, due time to actual send
    workflow_ids: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    send_seconds: float = 0.0
    connections: int = 0  # opened by the client pool
    stale_retries: int = 0  # requests resent because an idle keep-alive connection had closed

    @property
    def accepted(self) -> int:
        return len(self.workflow_ids)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Accepted enqueues per second over the whole sending phase (last response included)."""
        return self.accepted / self.send_seconds if self.send_seconds > 0 else 0.0


@dataclass
class DrainStats:
    """What the database says once the workers have drained the queue."""

    drained: bool
    drain_seconds: float  # from the last response to the last workflow finishing
    by_status: dict[str, int]
    not_once: list[str]  # ids not exactly once SUCCESS with all steps, each with why
    # Enqueue (created_at) to completion, per workflow, in seconds: queue wait plus run time.
    end_to_end: list[float]
    completed_per_second: float
    by_executor: dict[str, int]
    started_counts: dict[int, float]  # per worker metrics port: executions started
    completed_counts: dict[int, float]  # per worker metrics port: executions that succeeded


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def _enqueue_at_rate(base_url: str, plan: LoadPlan) -> EnqueueStats:
    stats = EnqueueStats(planned=plan.requests)
    body = json.dumps({"num_steps": plan.num_steps, "step_seconds": plan.step_seconds}).encode()
    url = httpx.URL(base_url)
    assert url.host == "127.0.0.1", "load goes to loopback only"
    # Enough connections that the client never becomes the queue: the API should be.
    pool = Http1Pool(url.host, url.port or 80, max_connections=500)
    # Warm one connection and the API's code paths; not part of the measurement.
    assert (await pool.request("GET", "/readyz")).status == 200

    async def one(due: float) -> None:
        stats.lateness.append(time.monotonic() - due)
        headers = {
            "Content-Type": "application/json",
            # A unique key per request, as a well-behaved client sends to retry safely.
            "Idempotency-Key": f"load-{uuid.uuid4()}",
        }
        try:
            reply = await asyncio.wait_for(
                pool.request("POST", "/api/workflows", body=body, headers=headers),
                timeout=plan.request_timeout,
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
            stats.errors[type(exc).__name__] += 1
            return
        finally:
            stats.latencies.append(time.monotonic() - due)
        if reply.status == 202:
            stats.workflow_ids.append(json.loads(reply.body)["workflow_id"])
        else:
            stats.errors[f"HTTP {reply.status}"] += 1

    start = time.monotonic() + 0.05
    tasks = []
    try:
        for i in range(plan.requests):
            due = start + i / plan.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=plan.request_timeout + 5)
    finally:
        stats.send_seconds = time.monotonic() - start
        stats.connections = pool.connections_opened
        stats.stale_retries = pool.stale_retries
        pool.close()
    return stats


def enqueue_at_rate(base_url: str, plan: LoadPlan) -> EnqueueStats:
    return asyncio.run(_enqueue_at_rate(base_url, plan))


def start_stack(database_url: str, workdir: Path, workers: int = 2) -> Stack:
    """The API and `workers` workers on a migrated database; the caller must stop() it."""
    stack = Stack(database_url, workdir, **LOAD_ENV)
    try:
        stack.start_api()
        for i in range(workers):
            stack.start_worker(executor_id=f"load-worker-{i}")
    except BaseException:
        stack.stop()
        raise
    return stack


def _engine(database_url: str) -> tuple[sa.Engine, str]:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    return engine, "dbos." if engine.dialect.name == "postgresql" else ""


def _status_counts(engine: sa.Engine, schema: str) -> dict[str, int]:
    sql = f"SELECT status, count(*) FROM {schema}workflow_status GROUP BY status"
    with engine.connect() as conn:
        return {str(status): int(n) for status, n in conn.execute(sa.text(sql))}


def _worker_counter(port: int, name: str, **labels: str) -> float:
    """The sum of one counter's samples on a worker's /metrics that carry these labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def wait_for_drain(stack: Stack, stats: EnqueueStats, plan: LoadPlan) -> DrainStats:
    """Wait (bounded) until no workflow is unfinished, then check each one ran exactly once."""
    engine, schema = _engine(stack.database_url)
    try:
        started = time.monotonic()
        deadline = started + plan.drain_timeout
        unfinished = {"ENQUEUED", "PENDING", "DELAYED"}
        by_status = _status_counts(engine, schema)
        while any(s in unfinished for s in by_status) and time.monotonic() < deadline:
            time.sleep(0.25)
            by_status = _status_counts(engine, schema)
        drained = not any(s in unfinished for s in by_status)
        drain_seconds = time.monotonic() - started
        return DrainStats(
            drained=drained,
            drain_seconds=drain_seconds,
            by_status=by_status,
            not_once=_not_exactly_once(engine, schema, stats.workflow_ids, plan.num_steps),
            end_to_end=_end_to_end(engine, schema),
            completed_per_second=_completed_per_second(engine, schema),
            by_executor=_by_executor(engine, schema),
            started_counts={
                port: _worker_counter(
                    port,
                    "queue_worker_workflows_started_total",
                    workflow=DEMO_WORKFLOW,
                    queue=WORKFLOW_QUEUE,
                )
                for port in stack.worker_ports
            },
            completed_counts={
                port: _worker_counter(
                    port,
                    "queue_worker_workflows_completed_total",
                    workflow=DEMO_WORKFLOW,
                    queue=WORKFLOW_QUEUE,
                    status="SUCCESS",
                )
                for port in stack.worker_ports
            },
        )
    finally:
        engine.dispose()


def _not_exactly_once(
    engine: sa.Engine, schema: str, workflow_ids: list[str], num_steps: int
) -> list[str]:
    """Every accepted id: one row, SUCCESS, dispatched once, every step recorded once."""
    rows_sql = f"""
        SELECT ws.workflow_uuid, ws.status, ws.recovery_attempts,
               (SELECT count(*) FROM {schema}operation_outputs oo
                WHERE oo.workflow_uuid = ws.workflow_uuid AND oo.function_name = :step) AS steps,
               (SELECT count(DISTINCT oo.function_id) FROM {schema}operation_outputs oo
                WHERE oo.workflow_uuid = ws.workflow_uuid AND oo.function_name = :step)
                   AS distinct_steps
        FROM {schema}workflow_status ws
    """
    with engine.connect() as conn:
        rows = {
            r.workflow_uuid: r for r in conn.execute(sa.text(rows_sql), {"step": STEP_FUNCTION})
        }
    problems = []
    counts = Counter(workflow_ids)
    for workflow_id, n in counts.items():
        if n > 1:
            problems.append(f"{workflow_id}: returned by {n} enqueue requests")
    for workflow_id in counts:
        row = rows.get(workflow_id)
        if row is None:
            problems.append(f"{workflow_id}: accepted (202) but not in the database")
        elif row.status != "SUCCESS":
            problems.append(f"{workflow_id}: {row.status}")
        elif int(row.recovery_attempts or 0) != 1:
            problems.append(f"{workflow_id}: dispatched {row.recovery_attempts} times")
        elif row.steps != num_steps or row.distinct_steps != num_steps:
            problems.append(f"{workflow_id}: {row.steps} step outputs, expected {num_steps}")
    for workflow_id in sorted(set(rows) - set(counts)):
        problems.append(f"{workflow_id}: in the database but no client got it back")
    return problems


def _end_to_end(engine: sa.Engine, schema: str) -> list[float]:
    sql = (
        f"SELECT completed_at - created_at FROM {schema}workflow_status "
        "WHERE status = 'SUCCESS' AND completed_at IS NOT NULL"
    )
    with engine.connect() as conn:
        return [int(ms) / 1000 for (ms,) in conn.execute(sa.text(sql))]


def _completed_per_second(engine: sa.Engine, schema: str) -> float:
    """Finished workflows per second, from the first enqueue to the last completion."""
    sql = (
        f"SELECT count(*), min(created_at), max(completed_at) FROM {schema}workflow_status "
        "WHERE status = 'SUCCESS'"
    )
    with engine.connect() as conn:
        n, first, last = conn.execute(sa.text(sql)).one()
    if not n or first is None or last is None or last <= first:
        return 0.0
    return int(n) / ((int(last) - int(first)) / 1000)


def _by_executor(engine: sa.Engine, schema: str) -> dict[str, int]:
    sql = f"SELECT executor_id, count(*) FROM {schema}workflow_status GROUP BY executor_id"
    with engine.connect() as conn:
        return {str(e): int(n) for e, n in conn.execute(sa.text(sql))}


def report(plan: LoadPlan, sent: EnqueueStats, drain: DrainStats) -> str:
    """The figures, as a few aligned lines for a terminal or a test log."""
    ms = 1000.0
    lines = [
        f"load plan      {plan.rate:g} req/s for {plan.duration:g} s = {plan.requests} enqueues "
        f"(open loop), {plan.num_steps} steps x {plan.step_seconds:g} s per workflow",
        f"enqueue        accepted {sent.accepted}/{sent.planned}, errors {sent.error_count}"
        + (f" {dict(sent.errors)}" if sent.errors else "")
        + f", throughput {sent.throughput:.1f} req/s over {sent.send_seconds:.1f} s",
        f"enqueue latency  p50 {percentile(sent.latencies, 50) * ms:.1f} ms  "
        f"p95 {percentile(sent.latencies, 95) * ms:.1f} ms  "
        f"p99 {percentile(sent.latencies, 99) * ms:.1f} ms  "
        f"max {max(sent.latencies, default=math.nan) * ms:.1f} ms",
        f"client         lateness p99 {percentile(sent.lateness, 99) * ms:.1f} ms (due time to "
        f"send: the generator kept up if small); {sent.connections} connections, "
        f"{sent.stale_retries} stale keep-alive retries",
        f"drain          {'done' if drain.drained else 'NOT DONE'} "
        f"{drain.drain_seconds:.1f} s after the last response; statuses {drain.by_status}",
        f"workers        {drain.completed_per_second:.1f} workflows/s completed; by executor "
        f"{drain.by_executor}",
        f"end to end     p50 {percentile(drain.end_to_end, 50):.2f} s  "
        f"p95 {percentile(drain.end_to_end, 95):.2f} s  "
        f"p99 {percentile(drain.end_to_end, 99):.2f} s (enqueue to SUCCESS)",
        f"exactly once   {'yes' if not drain.not_once else 'NO'}: "
        f"{len(drain.not_once)} problem(s); worker metrics started "
        f"{sum(drain.started_counts.values()):g}, succeeded "
        f"{sum(drain.completed_counts.values()):g}",
    ]
    lines += [f"  - {p}" for p in drain.not_once[:10]]
    return "\n".join(lines)
