"""The real HPA controller (kube-controller-manager, default 15 s sync) scaling the worker
Deployment on the External metric prometheus-adapter serves from a real Prometheus scraping the
real API pods.

Needs the external.metrics.k8s.io API (the local cluster registers prometheus-adapter; on another
cluster, install Prometheus and the adapter with deploy/prometheus-adapter/values.yaml).
Figures are printed (pytest -s), not asserted: this machine is shared and noisy.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from tests.cluster import kube
from tests.cluster.test_release_lifecycle import RELEASE, SMALL

CONCURRENCY = 4
MAX_REPLICAS = 4
STABILIZATION = 30  # seconds; the chart's default is 300, shortened so the test ends
WORKER = f"{RELEASE}-queue-worker-worker"
API = f"{RELEASE}-queue-worker-api"


def hpa_status(ns: str) -> dict[str, Any]:
    status: dict[str, Any] = kube.get("hpa", WORKER, namespace=ns).get("status", {})
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
    if not found:
        return None
    value: str = found[0]["value"]
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def install_autoscaled(ns: str) -> None:
    kube.kubectl("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1")  # served, or fail here
    kube.helm_release(
        "install", ns,
        values={
            **SMALL, **kube.POSTGRES_IMAGE,
            "worker.concurrency": CONCURRENCY,
            "worker.autoscaling.minReplicas": 1,
            "worker.autoscaling.maxReplicas": MAX_REPLICAS,
            "worker.autoscaling.scaleDown.stabilizationWindowSeconds": STABILIZATION,
        },
    )  # fmt: skip


def enqueue(http: Any, n: int, num_steps: int, step_seconds: float) -> list[str]:
    ids = []
    for _ in range(n):
        r = http.post("/api/workflows", json={"num_steps": num_steps, "step_seconds": step_seconds})
        assert r.status_code == 202, r.text
        ids.append(r.json()["workflow_id"])
    return ids


def queue_empty(http: Any) -> bool:
    (queue,) = [q for q in http.get("/api/queues").json() if q["queue_name"] == "workflow-queue"]
    return bool(queue["enqueued"] == 0 and queue["pending"] == 0)


def all_succeeded(http: Any, ids: list[str]) -> None:
    statuses = {http.get(f"/api/workflows/{i}").json()["workflow_status"] for i in ids}
    assert statuses == {"SUCCESS"}


def test_hpa_scales_workers_on_backlog_and_back(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("hpa")
    install_autoscaled(ns)

    # With the HPA on, a manual `kubectl scale` lasts only until the controller's next sync: it sets
    # the replicas back to what the metric asks for (README, "Scaling workers").
    kube.wait_until("HPA to read the metric", lambda: hpa_status(ns).get("currentMetrics"), 120)
    kube.kubectl("scale", f"deployment/{WORKER}", "-n", ns, "--replicas=3")
    t0 = time.monotonic()
    kube.wait_until(
        "the HPA to undo kubectl scale",
        lambda: kube.get("deployment", WORKER, namespace=ns)["spec"]["replicas"] == 1,
        STABILIZATION + 90,
    )
    print(f"\nkubectl scale to 3 undone by the HPA after {time.monotonic() - t0:.1f}s")

    backlog = 14  # -> ceil(14 / 4) = 4 workers
    want = min(MAX_REPLICAS, math.ceil(backlog / CONCURRENCY))
    with kube.api_client(ns, API) as http:
        t0 = time.monotonic()
        ids = enqueue(http, backlog, num_steps=12, step_seconds=5)
        seen = kube.wait_until(
            "the adapter to serve the backlog", lambda: external_backlog(ns), 120
        )
        t_metric = time.monotonic() - t0
        kube.wait_until(
            f"HPA desiredReplicas={want}",
            lambda: hpa_status(ns).get("desiredReplicas") == want,
            180,
        )
        t_desired = time.monotonic() - t0
        kube.wait_until(
            f"{want} ready workers", lambda: kube.ready_replicas(ns, WORKER) == want, 240
        )
        t_ready = time.monotonic() - t0
        print(
            f"backlog {backlog} (metric {seen:.0f}): adapter after {t_metric:.1f}s, HPA desired"
            f" {want} after {t_desired:.1f}s, {want} ready workers after {t_ready:.1f}s"
        )
        kube.wait_until("the backlog to drain", lambda: queue_empty(http), 300, interval=2)
        all_succeeded(http, ids)
        t_drained = time.monotonic()
        kube.wait_until(
            "HPA back to minReplicas=1",
            lambda: hpa_status(ns).get("desiredReplicas") == 1,
            STABILIZATION + 120,
        )
        kube.wait_until("1 worker", lambda: kube.ready_replicas(ns, WORKER) == 1, 180)
        print(f"back to 1 worker {time.monotonic() - t_drained:.1f}s after the drain")


def test_drain_of_300_short_workflows_autoscaled_vs_one_fixed_worker(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("drain")
    install_autoscaled(ns)
    n = 300
    times = {}
    for mode in ("autoscaled", "fixed"):
        if mode == "fixed":
            kube.helm_release(
                "upgrade", ns, "--reuse-values",
                values={"worker.autoscaling.enabled": False, "worker.replicas": 1},
            )  # fmt: skip
            kube.wait_until("1 worker pod", lambda: len(kube.running_pods(
                ns, **{"app.kubernetes.io/component": "worker"})) == 1, 180)  # fmt: skip
        with kube.api_client(ns, API) as http:
            t0 = time.monotonic()
            ids = enqueue(http, n, num_steps=1, step_seconds=0.5)
            kube.wait_until(f"{n} workflows to drain", lambda: queue_empty(http), 600, interval=1)
            times[mode] = time.monotonic() - t0
            all_succeeded(http, ids)
        peak = hpa_status(ns).get("desiredReplicas") if mode == "autoscaled" else 1
        print(f"\n{n} workflows (1 step of 0.5 s), {mode} (peak {peak} workers of concurrency"
              f" {CONCURRENCY}): drained in {times[mode]:.1f}s")  # fmt: skip
    print(f"autoscaled / fixed drain time: {times['autoscaled'] / times['fixed']:.2f}")


def test_lost_metric_keeps_the_workers_it_has(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    """The signal disappears (the API, Prometheus's only source of the backlog, is scaled to zero):
    the HPA controller marks ScalingActive=False (FailedGetExternalMetric) and keeps the replicas it
    has; it does not fall back to minReplicas while the backlog it last saw is still running."""
    ns = restricted_namespace("hpa-lost")
    install_autoscaled(ns)
    want = MAX_REPLICAS
    with kube.api_client(ns, API) as http:
        enqueue(http, CONCURRENCY * want, num_steps=30, step_seconds=4)
    kube.wait_until(f"{want} workers", lambda: kube.ready_replicas(ns, WORKER) == want, 240)

    kube.kubectl("scale", f"deployment/{API}", "-n", ns, "--replicas=0")

    def scaling_inactive() -> str | None:
        for c in hpa_status(ns).get("conditions", []):
            if c["type"] == "ScalingActive" and c["status"] == "False":
                return str(c["reason"])
        return None

    reason = kube.wait_until("ScalingActive=False", scaling_inactive, 120)
    assert reason == "FailedGetExternalMetric"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 45:  # three of the controller's 15 s syncs
        assert kube.get("deployment", WORKER, namespace=ns)["spec"]["replicas"] == want
        time.sleep(3)
    print(f"\nmetric gone: ScalingActive=False ({reason}), replicas held at {want} for 45 s")

    kube.kubectl("scale", f"deployment/{API}", "-n", ns, "--replicas=1")
    kube.wait_until("ScalingActive=True again", lambda: scaling_inactive() is None, 180)
