"""The real HPA controller (kube-controller-manager) scaling the worker Deployment on the External
metric prometheus-adapter serves from a real Prometheus scraping the real API pods.

Needs the external.metrics.k8s.io API (the local cluster registers prometheus-adapter; on another
cluster, install Prometheus and the adapter with deploy/prometheus-adapter/values.yaml).
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections.abc import Callable

import httpx

from tests.cluster import kube
from tests.cluster.test_release_lifecycle import RELEASE, SMALL

CONCURRENCY = 4
MAX_REPLICAS = 4
STABILIZATION = 30  # seconds; the chart's default is 300, shortened so the test ends


def hpa_status(ns: str) -> dict[str, object]:
    status: dict[str, object] = kube.get(
        "hpa", f"{RELEASE}-queue-worker-worker", namespace=ns
    ).get("status", {})
    return status


def external_backlog(ns: str) -> float | None:
    selector = urllib.parse.quote("queue=workflow-queue")
    proc = kube.kubectl(
        "get", "--raw",
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/queue_worker_queue_backlog"
        f"?labelSelector={selector}",
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    found = json.loads(proc.stdout)["items"]
    return float(kube_quantity(found[0]["value"])) if found else None


def kube_quantity(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def test_hpa_scales_workers_on_backlog_and_back(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    kube.kubectl("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1")  # served, or fail here
    ns = restricted_namespace("hpa")
    kube.helm(
        "install", RELEASE, str(kube.CHART), "-n", ns, "--wait", "--timeout", "5m",
        *kube.value_args(set_values={
            **SMALL, **kube.POSTGRES_IMAGE,
            "worker.concurrency": CONCURRENCY,
            "worker.autoscaling.minReplicas": 1,
            "worker.autoscaling.maxReplicas": MAX_REPLICAS,
            "worker.autoscaling.scaleDown.stabilizationWindowSeconds": STABILIZATION,
        }),
    )  # fmt: skip
    deployment = f"{RELEASE}-queue-worker-worker"
    # With the HPA on, a manual `kubectl scale` lasts only until the controller's next sync: it sets
    # the replicas back to what the metric asks for (README, "Scaling workers").
    kube.wait_until("HPA to read the metric", lambda: hpa_status(ns).get("currentMetrics"), 120)
    kube.kubectl("scale", f"deployment/{deployment}", "-n", ns, "--replicas=3")
    t0 = time.monotonic()
    kube.wait_until(
        "the HPA to undo kubectl scale",
        lambda: kube.get("deployment", deployment, namespace=ns)["spec"]["replicas"] == 1,
        STABILIZATION + 90,
    )
    print(f"\nkubectl scale to 3 undone by the HPA after {time.monotonic() - t0:.1f}s")

    backlog = 14  # -> ceil(14 / 4) = 4 workers
    with kube.port_forward(ns, f"svc/{RELEASE}-queue-worker-api", 80) as base:
        with httpx.Client(base_url=base, timeout=10) as http:
            t0 = time.monotonic()
            ids = []
            for _ in range(backlog):
                r = http.post("/api/workflows", json={"num_steps": 12, "step_seconds": 5})
                assert r.status_code == 202, r.text
                ids.append(r.json()["workflow_id"])
            seen = kube.wait_until(
                "the adapter to serve the backlog", lambda: external_backlog(ns), 120
            )
            t_metric = time.monotonic() - t0
            want = min(MAX_REPLICAS, math.ceil(backlog / CONCURRENCY))
            kube.wait_until(
                f"HPA desiredReplicas={want}",
                lambda: hpa_status(ns).get("desiredReplicas") == want,
                180,
            )
            t_desired = time.monotonic() - t0
            kube.wait_until(
                f"{want} ready workers", lambda: kube.ready_replicas(ns, deployment) == want, 240
            )
            t_ready = time.monotonic() - t0
            print(
                f"\nbacklog {backlog} (metric {seen:.0f}) seen by the adapter after {t_metric:.1f}s;"
                f" HPA desired {want} after {t_desired:.1f}s; {want} ready workers after"
                f" {t_ready:.1f}s"
            )

            def all_done() -> bool:
                return all(
                    http.get(f"/api/workflows/{i}").json()["workflow_status"] == "SUCCESS"
                    for i in ids
                )

            kube.wait_until("the backlog to drain", all_done, 300, interval=3)
            t_drained = time.monotonic()
            kube.wait_until(
                "HPA back to minReplicas=1",
                lambda: hpa_status(ns).get("desiredReplicas") == 1,
                STABILIZATION + 120,
            )
            kube.wait_until("1 worker", lambda: kube.ready_replicas(ns, deployment) == 1, 180)
            print(f"back to 1 worker {time.monotonic() - t_drained:.1f}s after the drain")
