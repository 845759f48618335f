"""A scale-out to maxReplicas on the real cluster with the database holding (issue 11, point 4).

The chart's in-cluster Postgres starts with max_connections = postgres.maxConnections, which the
release's connection budget is checked against (templates/_budget.tpl). A backlog that asks for
every worker the HPA may run brings them up; Postgres's own count of client connections
(pg_stat_activity, sampled while they run) stays within the budget, nothing is refused, and
every workflow succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.cluster import kube
from tests.cluster.test_autoscaling import API, WORKER, all_succeeded, enqueue, queue_empty
from tests.cluster.test_release_lifecycle import SMALL

MAX_REPLICAS = 6
CONCURRENCY = 4
POSTGRES = f"{kube.RELEASE}-queue-worker-postgres"


def psql(ns: str, sql: str) -> str:
    argv = ["exec", "-n", ns, f"deployment/{POSTGRES}", "--", "psql", "-h", "/var/run/postgresql",
            "-U", "queue_worker", "-d", "queue_worker", "-Atc", sql]  # fmt: skip
    return str(kube.kubectl(*argv).stdout).strip()


def test_scale_out_to_max_replicas_stays_within_max_connections(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("budget")
    kube.helm_release(
        "install", ns,
        values={
            **SMALL, **kube.POSTGRES_IMAGE,
            "worker.concurrency": CONCURRENCY,
            "worker.autoscaling.minReplicas": 1,
            "worker.autoscaling.maxReplicas": MAX_REPLICAS,
            "worker.autoscaling.scaleDown.stabilizationWindowSeconds": 30,
        },
    )  # fmt: skip
    max_connections = int(psql(ns, "SHOW max_connections"))
    clients = (
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND datname = 'queue_worker'"
    )
    with kube.api_client(ns, API) as http:
        ids = enqueue(http, CONCURRENCY * MAX_REPLICAS * 2, num_steps=10, step_seconds=2)
        kube.wait_until(
            f"{MAX_REPLICAS} ready workers",
            lambda: kube.ready_replicas(ns, WORKER) == MAX_REPLICAS,
            300,
            2,
        )
        peak = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            peak = max(peak, int(psql(ns, clients)))
            time.sleep(1)
        kube.wait_until("the backlog to drain", lambda: queue_empty(http), 600, 2)
        all_succeeded(http, ids)
    log = str(kube.kubectl("logs", "-n", ns, f"deployment/{POSTGRES}").stdout)
    print(
        f"\n{MAX_REPLICAS} workers at concurrency {CONCURRENCY} + 1 API pod: peak "
        f"{peak} client connections to queue_worker; max_connections {max_connections} "
        f"(the chart's budget: 133)"
    )
    # The budget (tests/chart/test_connection_budget.py computes it the same way): 8 worker pods
    # (6 + 25% surge) + 4 drain pods at 5 + 4 connections, 2 API pods at 10, drainer 2,
    # migrations 3 = 133, checked against postgres.maxConnections (300) - 10 reserved.
    assert max_connections == 300
    assert "too many clients" not in log
    assert peak <= 133
