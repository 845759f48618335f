"""The worker autoscaling loop, reproduced end to end on 127.0.0.1 (tests/autoscale/harness.py).

A real Prometheus scrapes a real API (backed by Postgres) and real worker processes, evaluates the
shipped recording rules, and the reproduced HPA reads the external metric through the shipped
prometheus-adapter rule. With a backlog of a few hundred short workflows the HPA must scale up to
the computed replica count, drain the backlog, hold during the scale-down stabilization window,
scale back to the minimum with SIGTERM, and every workflow must succeed exactly once.

Time is compressed: every controller duration (sync period 15 s, policy periods 15 s, scale-down
window 300 s) is multiplied by TIME_SCALE. Replica bounds are narrowed to what a 2-core machine
runs (MIN..MAX, set through the chart's values); everything else comes from the chart as rendered
(or from deploy/prometheus-adapter/worker-hpa.yaml without the chart or helm).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from tests.autoscale.harness import (
    KubeStateEmulator,
    ReproducedHpa,
    Step,
    WorkerPool,
    describe,
    finished_workflow_ids,
    load_hpa_spec,
)
from tests.autoscale.hpa import DEFAULT_SYNC_PERIOD_SEC
from tests.metrics.prometheus import PrometheusServer
from tests.support import Stack, enqueue, service_env

TIME_SCALE = 1 / 15
MIN_REPLICAS, MAX_REPLICAS = 1, 4
WORKER_CONCURRENCY = 5
WORKFLOWS = 300
NUM_STEPS, STEP_SECONDS = 2, 0.25


def _db_rows(url: str, ids: list[str]) -> dict[str, tuple[str, int, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT workflow_uuid, status, recovery_attempts, executor_id"
            " FROM dbos.workflow_status WHERE workflow_uuid = ANY(%s)",
            (ids,),
        ).fetchall()
    return {r[0]: (r[1], int(r[2]), r[3]) for r in rows}


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_reproduced_hpa_scales_up_drains_and_scales_back(pg_url: str, tmp_path: Path) -> None:
    spec, rendered = load_hpa_spec(
        {
            "worker.concurrency": str(WORKER_CONCURRENCY),
            "worker.autoscaling.minReplicas": str(MIN_REPLICAS),
            "worker.autoscaling.maxReplicas": str(MAX_REPLICAS),
        }
    )
    if not rendered:  # deploy/ default: same behaviour, bounds narrowed here
        spec = replace(spec, min_replicas=MIN_REPLICAS, max_replicas=MAX_REPLICAS)
    assert (spec.min_replicas, spec.max_replicas) == (MIN_REPLICAS, MAX_REPLICAS), spec.source
    concurrency = spec.target_milli // 1000  # the one value that feeds the HPA and the workers
    assert concurrency * 1000 == spec.target_milli
    spec = spec.scaled(TIME_SCALE)
    sync = DEFAULT_SYNC_PERIOD_SEC * TIME_SCALE
    window = spec.scale_down.stabilization_sec
    print(f"HPA from {spec.source}; target {concurrency}/pod; window {window:.1f}s; sync {sync}s")

    stack = Stack(pg_url, tmp_path)
    kube_state = KubeStateEmulator(spec)
    prometheus = PrometheusServer(
        tmp_path,
        static_jobs={
            "queue-worker-api": [f"127.0.0.1:{stack.api_port}"],
            "kube-state-metrics": [kube_state.target],
        },
    )
    env = service_env(
        pg_url,
        WORKER_CONCURRENCY=str(concurrency),
        LOG_FORMAT="json",
        WORKER_SHUTDOWN_GRACE_SECONDS="30",
    )
    pool = WorkerPool(env, tmp_path, prometheus)
    hpa = ReproducedHpa(spec, prometheus, pool, kube_state, sync_period_sec=sync)
    try:
        prometheus.check_config()
        kube_state.start()
        prometheus.start()
        stack.start_api()
        pool.scale_to(spec.min_replicas)  # the Deployment's initial replicas
        hpa.run(
            lambda s: s.decision.metric_milli == 0 and pool.ready_count() == spec.min_replicas,
            timeout=60,
        )
        assert pool.replicas == spec.min_replicas

        with stack.client() as client:
            first = enqueue(client, NUM_STEPS, step_seconds=STEP_SECONDS)
            backlog_at = time.monotonic()
            ids = [first] + [
                enqueue(client, NUM_STEPS, step_seconds=STEP_SECONDS) for _ in range(WORKFLOWS - 1)
            ]
        enqueued_in = time.monotonic() - backlog_at

        # What the arithmetic must reach: every workflow counts until it finishes, so the peak
        # signal is close to WORKFLOWS and ceil(peak / target) is far above max.
        expected = min(spec.max_replicas, math.ceil(WORKFLOWS / concurrency))
        reached = hpa.run(lambda s: s.replicas_after == expected, timeout=60)
        time_to_desired = reached.at - backlog_at
        hpa.run(lambda s: s.ready == expected, timeout=60, check_ready=True)
        time_to_ready = hpa.steps[-1].at - backlog_at

        first_with_backlog = next(
            s for s in hpa.steps if s.at > backlog_at and (s.decision.metric_milli or 0) > 0
        )
        d = first_with_backlog.decision
        assert d.metric_milli is not None
        assert d.raw == math.ceil(d.metric_milli / spec.target_milli), describe(first_with_backlog)

        drained = hpa.run(lambda s: s.decision.metric_milli == 0, timeout=120)
        drain_time = drained.at - backlog_at
        # Nothing scaled down while the backlog drained.
        assert all(s.replicas_after == expected for s in hpa.steps if reached.at <= s.at)

        back = hpa.run(lambda s: s.replicas_after == spec.min_replicas, timeout=window + 30)
        # The scale-down waited out the window after the last recommendation above the minimum.
        last_high = max(
            s.at for s in hpa.steps if s.at < back.at and s.decision.raw > spec.min_replicas
        )
        held = back.at - last_high
        assert window - sync <= held <= window + 3 * sync, (held, window)
        assert all(spec.min_replicas <= s.replicas_after <= spec.max_replicas for s in hpa.steps)
        pool.wait_stopped(timeout=60)
        codes = {w.name: w.exit_code for w in pool.stopped}
        assert set(codes.values()) == {0}, codes

        rows = _db_rows(pg_url, ids)
        assert len(rows) == WORKFLOWS
        not_done = {i: r for i, r in rows.items() if r[0] != "SUCCESS" or r[1] != 1}
        assert not not_done, f"not SUCCESS on the first dispatch: {list(not_done.items())[:5]}"
        finished = finished_workflow_ids(pool.logs())
        assert sorted(finished) == sorted(ids), "each workflow must run to completion exactly once"
        executors = {r[2] for r in rows.values()}
        assert len(executors) == expected, f"work should spread over every replica: {executors}"

        print(
            f"backlog of {WORKFLOWS} enqueued in {enqueued_in:.1f}s; "
            f"{expected} replicas set {time_to_desired:.1f}s after the first enqueue, "
            f"all ready after {time_to_ready:.1f}s; drained after {drain_time:.1f}s; "
            f"back to {spec.min_replicas} {held:.1f}s after the last high recommendation"
        )
        print("\n".join(describe(s) for s in _interesting(hpa.steps)))
    finally:
        pool.close()
        stack.stop()
        prometheus.stop()
        kube_state.stop()


def _interesting(steps: list[Step]) -> list[Step]:
    """Steps where something changed, for the log."""
    out = []
    for prev, step in zip([None, *steps], steps, strict=False):
        if prev is None or step.decision.desired != prev.decision.desired:
            out.append(step)
    return out
