"""`helm upgrade` with workflows in flight, on the real cluster (issue 10's two cases):

- a new image tag with the same workflow code: the in-flight workflows, handed back by the old
  pods at SIGTERM, finish on the new pods (one application version: DBOS's hash of the code);
- a new workflow version (worker.workflowVersion v1 -> v2): the old version's work finishes on a
  drain Deployment the drainer creates from the old pod template (real RBAC, ReplicaSet, pods),
  new work runs on v2, and the drain Deployment is removed once v1 has nothing left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.cluster import kube
from tests.cluster.test_release_lifecycle import RELEASE, SMALL

API = f"{RELEASE}-queue-worker-api"
WORKER = f"{RELEASE}-queue-worker-worker"
BASE: dict[str, object] = {
    **SMALL,
    **kube.POSTGRES_IMAGE,
    "worker.autoscaling.enabled": False,
    "worker.replicas": 1,
    # A short grace: the rollout hands the unfinished workflows back instead of waiting them out.
    "worker.shutdownGraceSeconds": 2,
    "worker.drain.intervalSeconds": 3,
}


def install(ns: str, **values: object) -> None:
    kube.helm_release("install", ns, values={**BASE, **values})


def upgrade(ns: str, **values: object) -> None:
    kube.helm_release("upgrade", ns, values={**BASE, **values})


def start_long_workflows(http: Any, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        r = http.post("/api/workflows", json={"num_steps": 12, "step_seconds": 2})
        assert r.status_code == 202, r.text
        ids.append(r.json()["workflow_id"])
    kube.wait_until(
        f"{n} workflows running",
        lambda: all(http.get(f"/api/workflows/{i}").json()["steps_completed"] >= 1 for i in ids),
        90,
    )
    return ids


def finished(http: Any, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        rows = [http.get(f"/api/workflows/{i}").json() for i in ids]
        terminal = ("SUCCESS", "ERROR", "CANCELLED")
        return rows if all(r["workflow_status"] in terminal for r in rows) else None

    result: list[dict[str, Any]] = kube.wait_until("the workflows to finish", done, timeout, 2)
    return result


def drains(ns: str) -> list[str]:
    return [
        d["metadata"]["name"]
        for d in kube.items("deployments", namespace=ns)
        if "-drain-" in d["metadata"]["name"]
    ]


def test_new_image_tag_same_code_keeps_in_flight_work(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("upg-same")
    install(ns)
    with kube.api_client(ns, API) as http:
        ids = start_long_workflows(http, 3)
        version = http.get(f"/api/workflows/{ids[0]}").json()["app_version"]
        upgrade(ns, **{"api.image.tag": kube.NEXT_TAG, "worker.image.tag": kube.NEXT_TAG})
    with kube.api_client(ns, API) as http:  # the API pod was replaced too
        rows = finished(http, ids, 180)
    assert {r["workflow_status"] for r in rows} == {"SUCCESS"}
    assert {r["app_version"] for r in rows} == {version}
    assert {r["steps_completed"] for r in rows} == {12}
    assert drains(ns) == []  # one version: nothing to drain


def test_new_workflow_version_drains_the_old_one_on_its_own(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("upg-drain")
    install(ns, **{"worker.workflowVersion": "v1"})
    with kube.api_client(ns, API) as http:
        old = start_long_workflows(http, 3)
        t0 = time.monotonic()
        upgrade(
            ns,
            **{"worker.workflowVersion": "v2", "worker.image.tag": kube.NEXT_TAG,
               "api.image.tag": kube.NEXT_TAG},
        )  # fmt: skip
    seen = kube.wait_until("the drainer to create a v1 drain Deployment", lambda: drains(ns), 120)
    print(f"\ndrain Deployment {seen} {time.monotonic() - t0:.1f}s after the upgrade began")
    (drain,) = seen
    spec = kube.get("deployment", drain, namespace=ns)["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "worker"]
    assert container["image"] == f"queue-worker-worker:{kube.APP_VERSION}"  # the old image
    with kube.api_client(ns, API) as http:
        new = http.post("/api/workflows", json={"num_steps": 2, "step_seconds": 0.2}).json()
        rows = finished(http, old, 240)
        print(f"v1 work finished {time.monotonic() - t0:.1f}s after the upgrade began")
        assert {(r["workflow_status"], r["app_version"]) for r in rows} == {("SUCCESS", "v1")}
        (fresh,) = finished(http, [new["workflow_id"]], 120)
        assert (fresh["workflow_status"], fresh["app_version"]) == ("SUCCESS", "v2")
    kube.wait_until("the drain Deployment to be removed", lambda: drains(ns) == [], 120)
    print(f"drain Deployment removed {time.monotonic() - t0:.1f}s after the upgrade began")
