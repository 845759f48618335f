"""helm install / upgrade / rollback / uninstall of the chart on a real API server, with pods that
really run, in namespaces that enforce Pod Security `restricted`."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.cluster import kube

RELEASE = kube.RELEASE
# Small pods: the local cluster is one node with the machine's 2 CPUs.
SMALL: dict[str, object] = {
    "api.replicas": 1,
    "api.resources.requests.cpu": "50m",
    "worker.resources.requests.cpu": "50m",
    "postgres.resources.requests.cpu": "50m",
}


def migration_runs(namespace: str) -> int:
    """Pods the migrations Job created, from the Job controller's events (hooks are deleted)."""
    return sum(
        1
        for e in kube.events(namespace, reason="SuccessfulCreate")
        if e["involvedObject"]["kind"] == "Job" and "-migrate" in e["involvedObject"]["name"]
    )


def images_of(namespace: str, component: str) -> set[str]:
    return {
        c["image"]
        for p in kube.running_pods(namespace, **{"app.kubernetes.io/component": component})
        for c in p["spec"]["containers"]
    }


def enqueue_and_wait(base: str, num_steps: int = 2, timeout: float = 90) -> dict[str, object]:
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post("/api/workflows", json={"num_steps": num_steps, "step_seconds": 0.2})
        assert r.status_code == 202, r.text
        wid = r.json()["workflow_id"]

        def done() -> dict[str, object] | None:
            body: dict[str, object] = http.get(f"/api/workflows/{wid}").json()
            return body if body["workflow_status"] in ("SUCCESS", "ERROR") else None

        result: dict[str, object] = kube.wait_until(f"workflow {wid} to finish", done, timeout)
        return result


def test_install_wait_upgrade_rollback_uninstall(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("lifecycle")
    values = {
        **SMALL,
        **kube.POSTGRES_IMAGE,
        "worker.autoscaling.enabled": False,
        "worker.replicas": 1,
    }

    # First install with the in-cluster Postgres and --wait: no hook deadlock, migrations once.
    t0 = time.monotonic()
    kube.helm_release("install", ns, values=values)
    print(f"\nhelm install --wait (in-cluster Postgres): {time.monotonic() - t0:.1f}s")
    assert migration_runs(ns) == 1
    assert kube.ready_replicas(ns, f"{RELEASE}-queue-worker-worker") == 1
    with kube.port_forward(ns, f"svc/{RELEASE}-queue-worker-api", 80) as base:
        assert enqueue_and_wait(base)["workflow_status"] == "SUCCESS"

    # Upgrade: a new image tag and changed values roll the pods; migrations run once more.
    t0 = time.monotonic()
    kube.helm_release(
        "upgrade", ns,
        values={
            **values,
            "api.image.tag": kube.NEXT_TAG,
            "worker.image.tag": kube.NEXT_TAG,
            "worker.concurrency": 3,
        },
    )  # fmt: skip
    print(f"helm upgrade --wait: {time.monotonic() - t0:.1f}s")
    assert migration_runs(ns) == 2
    kube.wait_until(
        "only new-tag workers",
        lambda: images_of(ns, "worker") == {f"queue-worker-worker:{kube.NEXT_TAG}"},
        120,
    )
    worker = kube.get("deployment", f"{RELEASE}-queue-worker-worker", namespace=ns)
    env = {
        e["name"]: e.get("value")
        for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["WORKER_CONCURRENCY"] == "3"
    with kube.port_forward(ns, f"svc/{RELEASE}-queue-worker-api", 80) as base:
        assert enqueue_and_wait(base)["workflow_status"] == "SUCCESS"

    # Rollback to revision 1: the first tag and values are back.
    kube.helm("rollback", RELEASE, "1", "-n", ns, "--wait", "--timeout", "5m")
    kube.wait_until(
        "only first-tag workers",
        lambda: images_of(ns, "worker") == {f"queue-worker-worker:{kube.APP_VERSION}"},
        120,
    )
    history = kube.helm("history", RELEASE, "-n", ns, "-o", "json").stdout
    assert '"revision":3' in history.replace(" ", "")
    with kube.port_forward(ns, f"svc/{RELEASE}-queue-worker-api", 80) as base:
        assert enqueue_and_wait(base)["workflow_status"] == "SUCCESS"

    # Uninstall leaves only what docs/kubernetes.md ("Uninstall") says Helm keeps: hook objects,
    # i.e. the chart-made database Secret and the migrations pod's NetworkPolicy.
    kube.helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "3m")
    kept = {
        f"secret/{RELEASE}-queue-worker-database",
        f"networkpolicy.networking.k8s.io/{RELEASE}-queue-worker-migrate",
    }

    def leftovers() -> set[str]:
        return set(
            kube.kubectl(
                "get", "all,configmap,secret,serviceaccount,role,rolebinding,pdb,networkpolicy,"
                "hpa,ingress,job,pvc", "-n", ns, "-l", f"app.kubernetes.io/instance={RELEASE}",
                "-o", "name",
            ).stdout.split()
        )  # fmt: skip

    deadline = time.monotonic() + 120  # pods of deleted ReplicaSets go through their grace period
    while (left := leftovers()) - kept and time.monotonic() < deadline:
        time.sleep(2)
    assert left - kept == set()
    assert left == kept


def test_kubectl_scale_changes_workers_without_autoscaling(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("scale")
    kube.helm_release(
        "install", ns,
        values={
            **SMALL, **kube.POSTGRES_IMAGE,
            "worker.autoscaling.enabled": False, "worker.replicas": 1,
        },
    )  # fmt: skip
    deployment = f"{RELEASE}-queue-worker-worker"
    kube.kubectl("scale", f"deployment/{deployment}", "-n", ns, "--replicas=3")
    kube.wait_until("3 ready workers", lambda: kube.ready_replicas(ns, deployment) == 3, 180)
    kube.kubectl("scale", f"deployment/{deployment}", "-n", ns, "--replicas=1")
    kube.wait_until(
        "1 worker pod left",
        lambda: len(kube.running_pods(ns, **{"app.kubernetes.io/component": "worker"})) == 1,
        180,
    )
