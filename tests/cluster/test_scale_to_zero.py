"""Scale to zero and back with the upstream HPA controller (issue 11, point 3).

The local cluster runs with the HPAScaleToZero feature gate, so worker.autoscaling.minReplicas: 0
is accepted: with an empty queue the HPA takes the workers to zero (the API keeps exporting the
backlog, so the signal survives), and the first enqueue brings one back. Printed, not asserted:
the time from that enqueue to the workflow's dequeue and to its first completed step on an idle
system, with the controller's share (HPA sync) and the pod's (start to ready). KEDA's operator is
not built here; its ScaledObject (worker.keda) is rendered and schema-checked in tests/chart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from tests.cluster import kube
from tests.cluster.test_autoscaling import API, WORKER, hpa_status
from tests.cluster.test_release_lifecycle import SMALL


def test_workers_scale_to_zero_and_back_on_the_first_enqueue(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("zero")
    kube.helm_release(
        "install", ns,
        values={
            **SMALL, **kube.POSTGRES_IMAGE,
            "worker.concurrency": 2,
            "worker.autoscaling.minReplicas": 0,
            "worker.autoscaling.maxReplicas": 2,
            "worker.autoscaling.scaleDown.stabilizationWindowSeconds": 20,
        },
    )  # fmt: skip

    def replicas() -> int:
        return int(kube.get("deployment", WORKER, namespace=ns)["spec"]["replicas"])

    kube.wait_until("the HPA to take the idle workers to zero", lambda: replicas() == 0, 180)
    kube.wait_until("no worker pod left", lambda: kube.ready_replicas(ns, WORKER) == 0, 120)
    with kube.api_client(ns, API) as http:
        t0 = time.monotonic()
        r = http.post("/api/workflows", json={"num_steps": 3, "step_seconds": 1})
        assert r.status_code == 202, r.text
        wid = r.json()["workflow_id"]
        kube.wait_until(
            "the HPA to ask for a worker",
            lambda: hpa_status(ns).get("desiredReplicas", 0) >= 1,
            180,
            0.5,
        )
        t_desired = time.monotonic() - t0
        kube.wait_until("a ready worker", lambda: kube.ready_replicas(ns, WORKER) >= 1, 180, 0.5)
        t_ready = time.monotonic() - t0
        kube.wait_until(
            "the first step",
            lambda: http.get(f"/api/workflows/{wid}").json()["steps_completed"] >= 1,
            120,
            0.5,
        )
        t_step = time.monotonic() - t0
        row = kube.wait_until(
            "the workflow to finish",
            lambda: (
                (w := http.get(f"/api/workflows/{wid}").json())["workflow_status"] == "SUCCESS"
                and w
            ),
            120,
        )
    dequeued = (
        datetime.fromisoformat(row["started_at"]) - datetime.fromisoformat(row["created_at"])
    ).total_seconds()
    print(
        f"\nfrom zero workers: HPA desired 1 after {t_desired:.1f}s, worker ready after "
        f"{t_ready:.1f}s, dequeued {dequeued:.1f}s after the enqueue, first step done after "
        f"{t_step:.1f}s (the step itself takes 1 s)"
    )
    assert row["steps_completed"] == 3
    kube.wait_until("back to zero workers", lambda: replicas() == 0, 180)
