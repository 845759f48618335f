"""Proof against a real Prometheus (issue 3, point 4), everything on 127.0.0.1.

Prometheus (our config, 1 s scrape and rule evaluation, the shipped rule files) scrapes two real
API replicas and a real worker backed by Postgres, plus the kube-state-metrics series of the
reproduced HPA (tests/autoscale/harness.py: there is no cluster here). With a backlog enqueued:
- the adapter's query, rendered as prometheus-adapter renders it, equals the count in the
  database, and so does the KEDA trigger's query, although two API replicas export the counts;
- every dashboard panel query, template variable and recording rule returns data, every alert
  expression evaluates and every series it reads exists, every rule evaluates without error;
- every metric Prometheus scraped from us is documented in docs/metrics.md;
- killing the only worker makes QueueWorkerNoWorkerUp and QueueWorkerOrphanedPending pending.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg
import pytest

from services.common.names import WORKFLOW_QUEUE
from tests.autoscale.harness import KubeStateEmulator, ReproducedHpa, WorkerPool, load_hpa_spec
from tests.metrics.prometheus import NAMESPACE, PrometheusServer
from tests.metrics.queries import (
    keda_query,
    panel_queries,
    rule_exprs,
    selectors_in,
    variable_queries,
)
from tests.support import ServiceProcess, Stack, enqueue, free_port, wait_for, wait_status

METRICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
BACKLOG = 12
CONCURRENCY = 2


def db_backlog(url: str) -> tuple[int, int]:
    """(ENQUEUED, PENDING) of the queue, straight from the system database."""
    with psycopg.connect(url) as conn:
        rows: dict[str, int] = dict(
            conn.execute(
                "SELECT status, count(*) FROM dbos.workflow_status"
                " WHERE queue_name = %s AND status IN ('ENQUEUED', 'PENDING') GROUP BY status",
                (WORKFLOW_QUEUE,),
            ).fetchall()
        )
    return int(rows.get("ENQUEUED", 0)), int(rows.get("PENDING", 0))


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_dashboards_rules_and_adapter_query_against_a_real_prometheus(
    pg_url: str, tmp_path: Path
) -> None:
    stack = Stack(pg_url, tmp_path, WORKER_CONCURRENCY=str(CONCURRENCY))
    api2_port = free_port()
    spec, _ = load_hpa_spec({})
    kube_state = KubeStateEmulator(spec)
    prometheus = PrometheusServer(
        tmp_path,
        static_jobs={
            "queue-worker-api": [f"127.0.0.1:{stack.api_port}", f"127.0.0.1:{api2_port}"],
            "kube-state-metrics": [kube_state.target],
        },
    )
    pool = WorkerPool({**stack.env, "LOG_FORMAT": "json"}, tmp_path, prometheus, "e2e-worker")
    api2: ServiceProcess | None = None
    try:
        assert "SUCCESS" in prometheus.check_config()
        kube_state.start()
        prometheus.start()
        stack.start_api()
        api2 = ServiceProcess(
            ["api", "--host", "127.0.0.1", "--port", str(api2_port)],
            stack.env,
            tmp_path / "api-2.log",
        )
        api2.wait_http_ok(f"http://127.0.0.1:{api2_port}/readyz")
        pool.scale_to(1)
        wait_for(lambda: pool.ready_count() == 1, timeout=60, what="the worker to be ready")
        # file_sd changes reach the scrape manager within ~5 s (its update throttle).
        wait_for(
            lambda: prometheus.targets_up("queue-worker-worker") == 1,
            timeout=30,
            what="Prometheus to scrape the worker",
        )

        with stack.client() as client:
            for wf in [enqueue(client, 1, step_seconds=0.05) for _ in range(4)]:
                wait_status(client, wf, {"SUCCESS"})
            # A backlog that stays put while we look: two long workflows run, the rest wait.
            for _ in range(BACKLOG):
                enqueue(client, 1, step_seconds=60)
        wait_for(
            lambda: db_backlog(pg_url) == (BACKLOG - CONCURRENCY, CONCURRENCY),
            timeout=30,
            what="two running and the rest waiting",
        )
        hpa = ReproducedHpa(spec, prometheus, pool, kube_state, sync_period_sec=1.0)

        def adapter_value() -> float | None:
            queries = hpa.adapter_queries()
            if len(queries) != 1:
                return None
            samples = prometheus.query(queries[0])
            return samples[0].value if len(samples) == 1 else None

        wait_for(
            lambda: adapter_value() == BACKLOG,
            timeout=30,
            what="Prometheus to serve the backlog through the adapter's query",
        )
        # The reproduced HPA's view, published as kube-state-metrics would (no scaling here).
        values = hpa.metric_values_milli()
        assert values == [BACKLOG * 1000]
        decision = hpa.controller.reconcile(time.monotonic(), pool.replicas, values)
        kube_state.update(pool.replicas, decision.desired)

        enqueued, pending = db_backlog(pg_url)
        assert adapter_value() == enqueued + pending == BACKLOG
        keda, _ = keda_query(NAMESPACE)
        assert [s.value for s in prometheus.query(keda)] == [BACKLOG]
        # Two API replicas export the same counts: summing would double the signal. Each replica
        # is scraped on its own schedule, so wait until both samples postdate the backlog.
        raw_sum = (
            f'sum(queue_worker_queue_depth{{queue="{WORKFLOW_QUEUE}"}}'
            f' + queue_worker_queue_in_flight{{queue="{WORKFLOW_QUEUE}"}})'
        )
        wait_for(
            lambda: [s.value for s in prometheus.query(raw_sum)] == [2 * BACKLOG],
            timeout=15,
            what="both API replicas' samples to show the backlog",
        )
        assert prometheus.targets_up("queue-worker-api") == 2

        wait_for(
            lambda: prometheus.query("kube_horizontalpodautoscaler_status_desired_replicas"),
            timeout=15,
            what="the kube-state-metrics series",
        )

        def panels_without_data() -> list[str]:
            return [
                f"{q.dashboard} / {q.panel}: {q.expr}"
                for q in panel_queries()
                if not prometheus.query(q.expr)
            ]

        # Rates need two samples of each new series inside their window: allow a few scrapes.
        deadline = time.monotonic() + 30
        while (empty := panels_without_data()) and time.monotonic() < deadline:
            time.sleep(1)
        assert not empty, "panel queries without data:\n" + "\n".join(empty)
        for board, label, match in variable_queries():
            assert prometheus.label_values(label, match), f"{board}: variable {label} is empty"

        for rule in rule_exprs():
            if rule.kind == "record":
                assert prometheus.query(rule.name), f"recording rule {rule.name} has no data"
            else:
                prometheus.query(rule.expr)  # evaluates without a PromQL error
                for selector in selectors_in(rule.expr):
                    assert prometheus.query(selector), f"{rule.name}: {selector} has no data"
        unhealthy = [r for r in prometheus.rule_health() if r["health"] != "ok"]
        assert not unhealthy, unhealthy
        quiet = {a["labels"]["alertname"] for a in prometheus.alerts()}
        assert not quiet & {"QueueWorkerNoWorkerUp", "QueueWorkerOrphanedPending"}, quiet

        scraped = prometheus.label_values("__name__", '{__name__=~"queue_worker_.+"}')
        documented = METRICS_DOC.read_text()
        undocumented = sorted(
            {
                base
                for name in scraped
                if f"`{(base := re.sub(r'_(bucket|sum|count)$', '', name))}`" not in documented
            }
        )
        assert not undocumented, f"docs/metrics.md does not describe {undocumented}"

        # The only worker dies without draining: its two workflows stay PENDING, nobody runs them.
        pool.kill(pool.running[0])

        def pending_alerts() -> set[str]:
            return {a["labels"]["alertname"] for a in prometheus.alerts()}

        wait_for(
            lambda: {"QueueWorkerNoWorkerUp", "QueueWorkerOrphanedPending"} <= pending_alerts(),
            timeout=30,
            what="the no-worker and orphaned-pending alerts to go pending",
        )
    finally:
        pool.close()
        if api2 is not None:
            api2.terminate()
        stack.stop()
        prometheus.stop()
        kube_state.stop()
