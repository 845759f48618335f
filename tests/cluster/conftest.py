"""Fixtures of the cluster tests: the cluster behind $KUBECONFIG, the upstream CRDs, namespaces
that enforce Pod Security `restricted`.

`make test-cluster` (scripts/test-cluster.sh) brings up the local cluster when KUBECONFIG is unset;
these tests never start anything themselves and fail (never skip) without a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster import kube

# The custom resources the chart renders, from the projects' own Go modules (their CRD manifests
# ship in the module zips), pinned here.
CRD_SOURCES = {
    "github.com/prometheus-operator/prometheus-operator@v0.85.0": [
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ],
    "github.com/kedacore/keda/v2@v2.17.2": ["config/crd/bases/keda.sh_scaledobjects.yaml"],
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.cluster)
        # An install waits for pods; the HPA tests wait for the controller's stabilization window.
        item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(scope="session")
def cluster() -> str:
    config = os.environ.get("KUBECONFIG")
    if not config:
        pytest.fail("KUBECONFIG is not set: run `make test-cluster` (it starts a local cluster)")
    kube.kubectl("version", "-o", "json")
    nodes = kube.items("nodes")
    assert nodes, "the cluster has no node"
    return config


def _module_dir(module: str) -> Path:
    cache = Path(os.environ.get("QW_CACHE", Path.home() / ".cache" / "queue-worker"))
    env = {
        **os.environ,
        "GOMODCACHE": str(cache / "go" / "mod"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
    }
    out = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    ).stdout
    return Path(json.loads(out)["Dir"])


@pytest.fixture(scope="session")
def crds(cluster: str) -> list[str]:
    """ServiceMonitor, PrometheusRule and ScaledObject, installed from upstream and Established."""
    names = []
    for module, files in CRD_SOURCES.items():
        base = _module_dir(module)
        for f in files:
            kube.apply((base / f).read_text(), server_side=True)
            names.append(
                next(
                    line.split(":", 1)[1].strip()
                    for line in (base / f).read_text().splitlines()
                    if line.startswith("  name:")
                )
            )
    for name in names:
        kube.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return names


@pytest.fixture
def restricted_namespace(cluster: str) -> Iterator[Callable[[str], str]]:
    """Makes namespaces that enforce Pod Security `restricted`; deletes them after the test."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        kube.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "labels": {
                            f"pod-security.kubernetes.io/{mode}": "restricted"
                            for mode in ("enforce", "warn", "audit")
                        },
                    },
                }
            )
        )
        made.append(name)
        return name

    yield make
    for name in made:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
