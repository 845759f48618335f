"""The chart with deploy/values/production.yaml (and + keda.yaml) on a real API server: every
object, custom resources included, accepted by the API server and Pod Security `restricted`
admission, the pods running against an external Postgres with separate owner and app roles, the
API behind the Ingress (routed by the local cluster's Traefik), and bearer tokens enforced."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import httpx
import pytest

from tests.cluster import kube
from tests.cluster.test_release_lifecycle import SMALL

TOKEN = "cluster-test-token-0123456789"
INGRESS_HOST = "queue-worker.cluster.test"
# Where the cluster's ingress controller listens and its IngressClass: the local cluster's Traefik
# (deploy/local-cluster/up.sh) unless set, e.g. for a kind cluster with its own controller.
INGRESS_URL = os.environ.get("QW_CLUSTER_INGRESS_URL", "http://127.0.0.1:8480")
INGRESS_CLASS = os.environ.get("QW_CLUSTER_INGRESS_CLASS", "traefik")
DB = "queue_worker"


def external_postgres(ns: str) -> None:
    """A Postgres outside the release (as production has), and the Secrets production.yaml names:
    the owner URL for the migrations Job, the app-role URL for the services, the API tokens."""
    labels = {"app": "external-postgres"}
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    manifest = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "queue-worker-database-owner"},
         "stringData": {"url": f"postgresql://owner:owner-pw@external-postgres:5432/{DB}"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "queue-worker-database"},
         "stringData": {"url": f"postgresql://queue_worker_app:app-pw@external-postgres:5432/{DB}"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "queue-worker-api-tokens"},
         "stringData": {"tokens": TOKEN + "\n"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external-postgres"},
         "spec": {"selector": labels, "ports": [{"port": 5432, "targetPort": 5432}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "external-postgres"},
         "spec": {"selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 70, "fsGroup": 70,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{
                     "name": "postgres",
                     "image": f"{kube.POSTGRES_IMAGE['postgres.image.repository']}:"
                              f"{kube.POSTGRES_IMAGE['postgres.image.tag']}",
                     "imagePullPolicy": "IfNotPresent",
                     # The max_connections production.yaml's database.maxConnections states.
                     "args": ["postgres", "-c", "max_connections=500"],
                     "env": [{"name": "POSTGRES_USER", "value": "owner"},
                             {"name": "POSTGRES_PASSWORD", "value": "owner-pw"},
                             {"name": "POSTGRES_DB", "value": DB}],
                     "readinessProbe": {"exec": {"command": ["pg_isready", "-h", "127.0.0.1"]}},
                     "securityContext": restricted,
                     "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                      {"name": "run", "mountPath": "/var/run/postgresql"}],
                 }],
                 "volumes": [{"name": "data", "emptyDir": {}}, {"name": "run", "emptyDir": {}}],
             }}}},
    ]  # fmt: skip
    for obj in manifest:
        kube.apply(json.dumps(obj), namespace=ns)
    kube.kubectl("rollout", "status", "deployment/external-postgres", "-n", ns, "--timeout=120s")
    kube.kubectl(
        "exec", "-n", ns, "deployment/external-postgres", "--", "psql", "-h", "/var/run/postgresql",
        "-U", "owner", "-d", DB, "-c", "CREATE ROLE queue_worker_app LOGIN PASSWORD 'app-pw'",
    )  # fmt: skip


def production_values() -> dict[str, object]:
    return {
        **SMALL,
        "api.replicas": 2,
        "api.image.repository": "queue-worker-api",
        "worker.image.repository": "queue-worker-worker",
        "worker.resources.requests.memory": "128Mi",
        "api.resources.requests.memory": "128Mi",
        "worker.autoscaling.maxReplicas": 4,
        "api.ingress.className": INGRESS_CLASS,
        "api.ingress.hosts[0]": INGRESS_HOST,
        "api.ingress.tls": [],  # no cert-manager here: plain HTTP through the local Traefik
    }


@pytest.mark.parametrize("extra_values", [(), ("keda.yaml",)], ids=["production", "keda"])
def test_production_values_install_run_and_serve_through_the_ingress(
    restricted_namespace: Callable[[str], str],
    crds: list[str],
    extra_values: tuple[str, ...],
) -> None:
    ns = restricted_namespace("prod")
    external_postgres(ns)
    t0 = time.monotonic()
    kube.helm_release(
        "install", ns, values_files=("production.yaml", *extra_values), values=production_values()
    )
    print(f"\nhelm install --wait ({' + '.join(('production', *extra_values))}):"
          f" {time.monotonic() - t0:.1f}s")  # fmt: skip

    kinds = {o.split("/")[0] for o in kube.kubectl(
        "get", "servicemonitor,prometheusrule,scaledobject,hpa,networkpolicy,pdb,ingress",
        "-n", ns, "-o", "name",
    ).stdout.split()}  # fmt: skip
    expected = {"servicemonitor.monitoring.coreos.com", "prometheusrule.monitoring.coreos.com",
                "networkpolicy.networking.k8s.io", "poddisruptionbudget.policy",
                "ingress.networking.k8s.io"}  # fmt: skip
    expected.add("scaledobject.keda.sh" if extra_values else "horizontalpodautoscaler.autoscaling")
    assert expected <= kinds, kinds
    # No pod was refused by Pod Security admission.
    refused = [e["message"] for e in kube.events(ns, reason="FailedCreate")]
    assert refused == []

    # Through the Ingress: the API needs the token; with it, a workflow runs to SUCCESS.
    def through_ingress(method: str, path: str, **kw: object) -> httpx.Response:
        return httpx.request(
            method, INGRESS_URL + path, headers={"Host": INGRESS_HOST, **kw.pop("headers", {})},  # type: ignore[dict-item]
            timeout=10, **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    kube.wait_until(
        "the Ingress to route to the API",
        lambda: through_ingress("GET", "/api/workflows").status_code == 401,
        60,
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = through_ingress("POST", "/api/workflows", json={"num_steps": 2, "step_seconds": 0.1},
                        headers=auth)  # fmt: skip
    assert r.status_code == 202, r.text
    wid = r.json()["workflow_id"]
    if extra_values:  # KEDA is not installed: nothing scales the workers from zero here.
        return
    kube.wait_until(
        "the workflow to succeed",
        lambda: (
            through_ingress("GET", f"/api/workflows/{wid}", headers=auth).json()["workflow_status"]
            == "SUCCESS"
        ),
        120,
    )
    assert through_ingress("GET", "/metrics").status_code == 404  # kept off the Ingress
