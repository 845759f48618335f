"""Chaos: 510 workflows on 3 workers while a random worker is SIGKILLed every few seconds (and
replaced under a new executor id) and Postgres is restarted once. Everything must finish exactly
as it would have without the chaos, and the API must keep answering (503 + Retry-After while the
database is down, never a hang). Runs against a private Postgres so the restart harms no one.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.common.migrate import migrate_schema
from tests.chaos.private_postgres import PrivatePostgres
from tests.support import Stack, wait_for

WORKFLOWS = 510
STEPS = 4
STEP_SECONDS = 0.5
KILL_EVERY_SEC = 3.0
DEADLINE_SEC = 180.0


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


@dataclass
class Probe:
    """Hits the API continuously from a thread and records what it saw."""

    base_url: str
    results: list[tuple[float, str, float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            while not self.stop.is_set():
                for method, path in (("GET", "/api/workflows?limit=5"), ("GET", "/api/queues")):
                    started = time.monotonic()
                    try:
                        resp = http.request(method, path)
                        outcome = str(resp.status_code)
                        if resp.status_code == 503:
                            assert resp.headers.get("retry-after"), "503 without Retry-After"
                            assert resp.json()["error"]["message"]
                    except (httpx.HTTPError, AssertionError, ValueError) as exc:
                        outcome = f"{type(exc).__name__}: {exc}"
                    self.results.append((started, path, time.monotonic() - started, outcome))
                time.sleep(0.1)


def db_outcome(url: str) -> tuple[Counter[str], Counter[int], list[str]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            statuses = Counter(
                {
                    r[0]: int(r[1])
                    for r in conn.execute(
                        sa.text("SELECT status, count(*) FROM dbos.workflow_status GROUP BY 1")
                    )
                }
            )
            steps = conn.execute(
                sa.text(
                    "SELECT ws.workflow_uuid, count(oo.function_id) FROM dbos.workflow_status ws "
                    "LEFT JOIN dbos.operation_outputs oo ON oo.workflow_uuid = ws.workflow_uuid "
                    "AND oo.function_name LIKE '%demo_step' "
                    "AND oo.completed_at_epoch_ms IS NOT NULL "
                    "GROUP BY ws.workflow_uuid"
                )
            ).all()
            progress = conn.execute(
                sa.text(
                    "SELECT ws.workflow_uuid FROM dbos.workflow_status ws "
                    "LEFT JOIN dbos.workflow_events ev ON ev.workflow_uuid = ws.workflow_uuid "
                    "AND ev.key = 'workflow_progress' "
                    "WHERE ev.value IS NULL OR ev.value NOT LIKE :done"
                ),
                {"done": f'%"steps_completed":{STEPS},%'},
            ).all()
    finally:
        engine.dispose()
    return statuses, Counter(int(r[1]) for r in steps), [r[0] for r in progress]


def test_nothing_is_lost_under_chaos(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    url = private_pg.url
    migrate_schema(url)
    stack = Stack(
        url,
        tmp_path,
        WORKER_CONCURRENCY="10",
        WORKER_HEARTBEAT_SECONDS="0.5",
        WORKER_DEAD_AFTER_SECONDS="2.5",
        WORKER_RECOVERY_SWEEP_SECONDS="0.5",
        WORKER_SHUTDOWN_GRACE_SECONDS="5",
        RUN_MIGRATIONS="false",
    )
    rng = random.Random(20261125)
    probe = Probe(stack.base_url)
    probe_thread = threading.Thread(target=probe.run, daemon=True)
    kills = 0
    outage: tuple[float, float] | None = None
    try:
        stack.start_api()
        workers = [stack.start_worker(f"chaos-{i}") for i in range(3)]
        with stack.client() as http, ThreadPoolExecutor(8) as pool:
            body = {"num_steps": STEPS, "step_seconds": STEP_SECONDS}
            codes = list(
                pool.map(
                    lambda _: http.post("/api/workflows", json=body).status_code,
                    range(WORKFLOWS),
                )
            )
        assert codes == [202] * WORKFLOWS
        probe_thread.start()
        started = time.monotonic()

        def remaining() -> int:
            with stack.client() as http:
                resp = http.get("/api/queues")
                if resp.status_code != 200:
                    return -1
                q = resp.json()[0]
                return int(q["enqueued"] + q["pending"])

        while time.monotonic() - started < DEADLINE_SEC and remaining() != 0:
            time.sleep(KILL_EVERY_SEC)
            if kills == 2 and outage is None:
                down = time.monotonic()
                private_pg.stop()
                time.sleep(4)
                private_pg.start()
                outage = (down, time.monotonic())
                continue
            victim = rng.choice([w for w in workers if w.proc.poll() is None])
            victim.proc.kill()
            victim.proc.wait()
            kills += 1
            workers.append(stack.start_worker(f"chaos-{3 + kills}"))

        def all_done() -> bool:
            statuses, _, _ = db_outcome(url)
            return set(statuses) == {"SUCCESS"}

        wait_for(all_done, timeout=120, interval=1, what="every workflow to succeed")
        elapsed = time.monotonic() - started
    finally:
        probe.stop.set()
        if probe_thread.is_alive():
            probe_thread.join(timeout=15)
        stack.stop()

    statuses, steps_per_workflow, unfinished_progress = db_outcome(url)
    assert statuses == Counter({"SUCCESS": WORKFLOWS})
    assert steps_per_workflow == Counter({STEPS: WORKFLOWS}), "a step's recorded output was lost"
    assert unfinished_progress == []
    assert kills >= 4
    assert outage is not None

    outcomes = Counter(o for _, _, _, o in probe.results)
    assert set(outcomes) <= {"200", "503"}, outcomes  # no 5xx but 503, no exception, no hang
    assert max(d for _, _, d, _ in probe.results) < 8
    during = [o for t, _, _, o in probe.results if outage[0] + 0.5 < t < outage[1] - 0.5]
    assert during, "no probe landed inside the outage"
    assert set(during) == {"503"}, during
    assert outcomes["200"] > 0
    print(
        f"chaos: {WORKFLOWS} workflows, {kills} SIGKILLs, Postgres down "
        f"{outage[1] - outage[0]:.1f}s, drained in {elapsed:.1f}s; API probes {dict(outcomes)}, "
        f"max probe latency {max(d for _, _, d, _ in probe.results):.2f}s"
    )
