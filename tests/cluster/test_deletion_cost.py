"""Busy-aware scale-down on the real cluster (issue 11, point 1).

Four workers at concurrency 1, two of them running a long workflow, scaled to two with `kubectl
scale`. Without the pod-deletion cost the ReplicaSet picks among four equal pods and may delete a
busy one: it drains for its short grace period, hands its workflow back, and the workflow restarts
on another pod (its executor changes). With the cost, the busy pods carry cost 1 and the idle ones
0, so the idle two go and the two workflows finish where they started. The admission policy is
checked from inside a worker pod with its own ServiceAccount token: its own annotation yes,
another pod or any other change no.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.cluster import kube
from tests.cluster.test_release_lifecycle import RELEASE, SMALL

API = f"{RELEASE}-queue-worker-api"
WORKER = f"{RELEASE}-queue-worker-worker"
COST = "controller.kubernetes.io/pod-deletion-cost"
BASE: dict[str, object] = {
    **SMALL,
    **kube.POSTGRES_IMAGE,
    "worker.autoscaling.enabled": False,
    "worker.replicas": 4,
    "worker.concurrency": 1,
    "worker.shutdownGraceSeconds": 2,
    "worker.podDeletionCost.intervalSeconds": 1,
    "worker.drain.enabled": False,
}
WORKER_SELECTOR = {"app.kubernetes.io/component": "worker"}


def worker_pods(ns: str) -> dict[str, dict[str, str]]:
    """Running, not terminating worker pods and their annotations."""
    return {
        p["metadata"]["name"]: p["metadata"].get("annotations", {})
        for p in kube.running_pods(ns, **WORKER_SELECTOR)
    }


def scale_down_two_busy_of_four(ns: str, *, cost: bool) -> dict[str, Any]:
    kube.helm_release("install", ns, values={**BASE, "worker.podDeletionCost.enabled": cost})
    kube.wait_until("4 ready workers", lambda: kube.ready_replicas(ns, WORKER) == 4, 180)
    with kube.api_client(ns, API) as http:
        ids = []
        for _ in range(2):
            r = http.post("/api/workflows", json={"num_steps": 25, "step_seconds": 1})
            assert r.status_code == 202, r.text
            ids.append(r.json()["workflow_id"])

        def started() -> list[str] | None:
            rows = [http.get(f"/api/workflows/{i}").json() for i in ids]
            ok = all(r["workflow_status"] == "PENDING" and r["steps_completed"] >= 1 for r in rows)
            return [r["executor_id"] for r in rows] if ok else None

        busy = kube.wait_until("2 workflows running", started, 90)
        assert len(set(busy)) == 2, busy  # concurrency 1: one per pod
        if cost:
            want = {name: "1" if name in busy else "0" for name in worker_pods(ns)}
            kube.wait_until(
                "the deletion costs to show who is busy",
                lambda: {n: a.get(COST) for n, a in worker_pods(ns).items()} == want,
                30,
            )
        kube.kubectl("scale", "deployment", WORKER, "-n", ns, "--replicas=2")
        kept = kube.wait_until(
            "2 workers left",
            lambda: (p := worker_pods(ns)) and len(p) == 2 and sorted(p),
            120,
        )

        def finished() -> list[dict[str, Any]] | None:
            rows = [http.get(f"/api/workflows/{i}").json() for i in ids]
            done = all(r["workflow_status"] in ("SUCCESS", "ERROR", "CANCELLED") for r in rows)
            return rows if done else None

        rows = kube.wait_until("the workflows to finish", finished, 180, 2)
    restarted = sum(1 for r, first in zip(rows, busy, strict=True) if r["executor_id"] != first)
    print(
        f"\nscale 4 -> 2 with 2 busy, deletion cost {'on' if cost else 'off'}: kept {kept}, "
        f"busy were {sorted(busy)}, workflows restarted: {restarted} of 2"
    )
    return {"rows": rows, "busy": busy, "kept": kept, "restarted": restarted}


def test_without_the_cost_nothing_is_lost_but_busy_pods_may_go(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    result = scale_down_two_busy_of_four(restricted_namespace("cost-off"), cost=False)
    assert {r["workflow_status"] for r in result["rows"]} == {"SUCCESS"}
    assert {r["steps_completed"] for r in result["rows"]} == {25}


def test_with_the_cost_the_idle_workers_go_and_nothing_restarts(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    result = scale_down_two_busy_of_four(restricted_namespace("cost-on"), cost=True)
    assert sorted(result["kept"]) == sorted(result["busy"])
    assert result["restarted"] == 0
    for row in result["rows"]:
        assert row["workflow_status"] == "SUCCESS"
        assert row["recovery_attempts"] == 1  # dispatched once: never handed back


PATCH = """
import os, sys
from services.common.kube import SERVICE_ACCOUNT, Kube, KubeError
env = os.environ
url = "https://%s:%s" % (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"])
sa = SERVICE_ACCOUNT
k = Kube(url, env["POD_NAMESPACE"], token_file=sa / "token", ca_file=sa / "ca.crt")
try:
    k.annotate_pod(sys.argv[1], {sys.argv[2]: sys.argv[3]})
    print("allowed")
except KubeError as exc:
    print(exc.status, exc)
"""


def test_a_worker_may_change_only_its_own_pods_cost(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("cost-vap")
    kube.helm_release("install", ns, values={**BASE, "worker.replicas": 2})
    kube.wait_until("2 ready workers", lambda: kube.ready_replicas(ns, WORKER) == 2, 180)
    me, other = sorted(worker_pods(ns))

    def patch(pod: str, key: str, value: str) -> str:
        argv = ["exec", "-n", ns, me, "-c", "worker", "--", "python", "-c", PATCH, pod, key, value]
        return str(kube.kubectl(*argv).stdout).strip()

    assert patch(me, COST, "7") == "allowed"
    assert worker_pods(ns)[me][COST] == "7"
    denied_other = patch(other, COST, "7")
    assert denied_other.startswith("403") or denied_other.startswith("422"), denied_other
    assert "only its own pod" in denied_other
    denied_key = patch(me, "example.com/other", "x")
    assert "only its pod's controller.kubernetes.io/pod-deletion-cost" in denied_key
    assert worker_pods(ns)[other].get(COST) != "7"
