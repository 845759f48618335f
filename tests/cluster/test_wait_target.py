"""The wait-time target on the real HPA (worker.autoscaling.targetWaitSeconds): the adapter serves
both of its External metrics, the controller reads them, and a burst that would wait longer than
the target scales the workers out; every workflow still succeeds. The comparison with the depth
target on bursty arrivals is a benchmark (bench/autoscale_targets.py), not a test."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from tests.cluster import kube
from tests.cluster.test_autoscaling import (
    API,
    WORKER,
    all_succeeded,
    enqueue,
    hpa_status,
    queue_empty,
)
from tests.cluster.test_release_lifecycle import SMALL

METRICS = ("queue_worker_queue_work_seconds", "queue_worker_needed_slots")


def install_wait_target(ns: str, target_wait: float, max_replicas: int = 4) -> None:
    kube.helm_release(
        "install", ns,
        values={
            **SMALL, **kube.POSTGRES_IMAGE,
            "worker.concurrency": 2,
            "worker.autoscaling.minReplicas": 1,
            "worker.autoscaling.maxReplicas": max_replicas,
            "worker.autoscaling.targetWaitSeconds": target_wait,
            "worker.autoscaling.scaleDown.stabilizationWindowSeconds": 30,
        },
    )  # fmt: skip


def served(ns: str, metric: str) -> bool:
    selector = urllib.parse.quote("queue=workflow-queue")
    path = (
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}?labelSelector={selector}"
    )
    proc = kube.kubectl("get", "--raw", path, check=False)
    return proc.returncode == 0 and '"items":[{' in proc.stdout.replace(" ", "")


def test_a_burst_past_the_wait_target_scales_out_on_both_metrics(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("wait")
    install_wait_target(ns, target_wait=5)
    spec_metrics = [
        m["external"]["metric"]["name"]
        for m in kube.get("hpa", WORKER, namespace=ns)["spec"]["metrics"]
    ]
    assert spec_metrics == list(METRICS)
    with kube.api_client(ns, API) as http:
        # 20 workflows of 4 x 1 s on one pod of concurrency 2: about 40 s of waiting, 8x the target.
        ids = enqueue(http, 20, num_steps=4, step_seconds=1)
        for metric in METRICS:
            kube.wait_until(f"the adapter to serve {metric}", lambda m=metric: served(ns, m), 120)

        def read_by_hpa() -> set[str] | None:
            current = hpa_status(ns).get("currentMetrics") or []
            names = {m["external"]["metric"]["name"] for m in current if m.get("external")}
            return names if names == set(METRICS) else None

        kube.wait_until("the HPA to read both metrics", read_by_hpa, 120)
        peak = kube.wait_until(
            "the HPA to scale out",
            lambda: (d := hpa_status(ns).get("desiredReplicas", 1)) > 1 and d,
            120,
        )
        print(f"\nwait target 5 s: HPA desired {peak} workers for 20 queued workflows")
        kube.wait_until("the burst to drain", lambda: queue_empty(http), 300, interval=2)
        all_succeeded(http, ids)
