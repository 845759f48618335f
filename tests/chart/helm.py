"""Render the chart with the real helm binary and hand the objects to the tests.

helm comes from HELM_BIN, the PATH, or the cache scripts/test-deps.d/42-helm.sh fills
(~/.cache/queue-worker/bin/helm). No cluster is involved: `helm template` and `helm lint` only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "queue-worker"
VALUES_DIR = ROOT / "deploy" / "values"
RELEASE = "qw"
NAMESPACE = "queue"

Obj = dict[str, Any]


@cache
def helm_bin() -> str:
    candidates = [
        os.environ.get("HELM_BIN"),
        shutil.which("helm"),
        str(Path.home() / ".cache" / "queue-worker" / "bin" / "helm"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("helm not found: run scripts/test-deps.d/42-helm.sh (or set HELM_BIN)")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [helm_bin(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def template_args(
    values_files: tuple[str, ...] = (),
    set_values: Mapping[str, str] | None = None,
    *,
    release: str = RELEASE,
    kube_version: str | None = None,
) -> list[str]:
    args = ["template", release, str(CHART), "--namespace", NAMESPACE]
    for name in values_files:
        args += ["-f", str(VALUES_DIR / name)]
    for key, value in (set_values or {}).items():
        args += ["--set", f"{key}={value}"]
    if kube_version:
        args += ["--kube-version", kube_version]
    return args


@dataclass(frozen=True)
class Scenario:
    """One way to install the chart: values files from deploy/values/ plus --set overrides."""

    name: str
    values_files: tuple[str, ...] = ()
    set_values: Mapping[str, str] = field(default_factory=dict)


SCENARIOS = [
    # Trying it out: throwaway Postgres, HPA on (scales once prometheus-adapter serves the metric).
    Scenario("defaults"),
    Scenario("dev", ("dev.yaml",)),
    # External database from Secrets, Ingress with TLS, Prometheus Operator objects, dashboards.
    Scenario("production", ("production.yaml",)),
    Scenario("production-hpa-off", ("production.yaml",), {"worker.autoscaling.enabled": "false"}),
    Scenario("production-keda", ("production.yaml", "keda.yaml")),
    # The sparse corners: URL in a chart-made Secret, no policies, no SA, no hooks, no tests.
    Scenario(
        "minimal-external-url",
        (),
        {
            "postgres.enabled": "false",
            "database.url": "postgresql://app:secret@db.example.com:5432/queue_worker",
            "database.maxConnections": "250",
            "networkPolicy.enabled": "false",
            "serviceAccount.create": "false",
            "migrations.enabled": "false",
            "tests.enabled": "false",
            "api.pdb.enabled": "false",
            "worker.pdb.enabled": "false",
            "api.preStopSleepSeconds": "0",
            "metrics.podAnnotations": "false",
        },
    ),
]


@dataclass(frozen=True)
class Rendered:
    objects: list[Obj]
    text: str

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return o
        raise AssertionError(f"no {kind}/{name}; have {[kn(o) for o in self.objects]}")

    def find(self, kind: str, name: str) -> Obj | None:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return matches[0] if matches else None


def kn(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


@cache
def _render_cached(
    values_files: tuple[str, ...], set_items: tuple[tuple[str, str], ...], release: str
) -> Rendered:
    text = helm(*template_args(values_files, dict(set_items), release=release)).stdout
    objects = [doc for doc in yaml.safe_load_all(text) if doc]
    return Rendered(objects, text)


def render(
    values_files: tuple[str, ...] = (),
    set_values: Mapping[str, str] | None = None,
    *,
    release: str = RELEASE,
) -> Rendered:
    return _render_cached(values_files, tuple(sorted((set_values or {}).items())), release)


def render_scenario(scenario: Scenario) -> Rendered:
    return render(scenario.values_files, scenario.set_values)


def name(component: str, release: str = RELEASE) -> str:
    """The chart's object name for a component of a release (fullname-component)."""
    return f"{release}-queue-worker-{component}"


def pod_specs(rendered: Rendered) -> Iterator[tuple[Obj, Obj]]:
    """(owner, pod spec) of every workload: Deployments, Jobs and bare Pods."""
    for obj in rendered.objects:
        if obj["kind"] in {"Deployment", "Job"}:
            yield obj, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj, obj["spec"]


def pod_labels(obj: Obj) -> dict[str, str]:
    if obj["kind"] == "Pod":
        return dict(obj["metadata"].get("labels", {}))
    return dict(obj["spec"]["template"]["metadata"].get("labels", {}))


def container(spec: Obj, container_name: str) -> Obj:
    for c in spec["containers"]:
        if c["name"] == container_name:
            return dict(c)
    raise AssertionError(f"no container {container_name}")


def env_of(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c.get("env", [])}


def values_yaml(path: Path) -> Obj:
    data: Obj = yaml.safe_load(path.read_text())
    return data
