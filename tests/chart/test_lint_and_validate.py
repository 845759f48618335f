"""helm lint --strict, and every rendered object validated against the Kubernetes API schemas.

kubernetes-validate --strict checks the built-in kinds (it rejects misspelt fields) for every
Kubernetes minor version it ships schemas for, from the chart's minimum (1.25) up. The custom
resources (ServiceMonitor, PrometheusRule, ScaledObject) are checked against schemas generated from
the Prometheus Operator and KEDA CRD models (crd-schemas/, by scripts/gen-crd-schemas.sh), made
strict the same way. No API server is involved:
admission webhooks, defaulting and controllers are beyond what runs here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.version import Version

from tests.chart.helm import (
    CHART,
    SCENARIOS,
    Obj,
    Scenario,
    helm,
    kn,
    render_scenario,
    template_args,
)

pytestmark = pytest.mark.chart

CRD_SCHEMAS = Path(__file__).parent / "crd-schemas"
MIN_KUBERNETES = Version("1.25")
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}
# Rendered only for Kubernetes 1.30+ (templates/worker-rbac.yaml checks the cluster's version);
# the scenarios are rendered once, for the newest version, and validated against every version.
KINDS_SINCE_1_30 = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def _kubernetes_versions() -> list[str]:
    from kubernetes_validate import utils  # type: ignore[import-untyped]

    versions = {v for v in utils.all_versions() if Version(v) >= MIN_KUBERNETES}
    return sorted(versions, key=Version)


KUBERNETES_VERSIONS = _kubernetes_versions()


def test_covers_a_range_of_kubernetes_versions() -> None:
    assert KUBERNETES_VERSIONS[0] == "1.25.0"
    assert len(set(KUBERNETES_VERSIONS)) == len(KUBERNETES_VERSIONS)
    assert len(KUBERNETES_VERSIONS) >= 10, KUBERNETES_VERSIONS


@pytest.mark.parametrize(
    "values_files",
    [(), ("dev.yaml",), ("production.yaml",), ("production.yaml", "keda.yaml")],
    ids=["defaults", "dev", "production", "production+keda"],
)
def test_helm_lint_strict(values_files: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", "queue"]
    for name in values_files:
        args += ["-f", str(CHART.parents[1] / "deploy" / "values" / name)]
    proc = helm(*args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_chart_refuses_kubernetes_older_than_its_minimum() -> None:
    proc = helm(*template_args(kube_version="1.24.0"), check=False)
    assert proc.returncode != 0
    assert "kubeVersion" in proc.stderr
    helm(*template_args(kube_version="1.25.0"))


@pytest.fixture(scope="module")
def validation_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """kubernetes-validate --strict over every scenario's objects, once per Kubernetes version.

    Objects that several scenarios render identically are validated once; the versions run in
    parallel (one process per core): the whole matrix takes seconds, not minutes.
    """
    unique: dict[str, Obj] = {}
    for scenario in SCENARIOS:
        for obj in render_scenario(scenario).objects:
            unique.setdefault(json.dumps(obj, sort_keys=True), obj)
    path = tmp_path_factory.mktemp("rendered") / "all-scenarios.yaml"
    path.write_text(yaml.safe_dump_all(list(unique.values()), sort_keys=False))

    def run(version: str) -> tuple[int, str]:
        proc = subprocess.run(
            [
                sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet",
                "--kubernetes-version", version, str(path),
            ],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        return proc.returncode, proc.stdout + proc.stderr

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(KUBERNETES_VERSIONS, pool.map(run, KUBERNETES_VERSIONS), strict=True))


def _minor(version: str) -> int:
    return int(version.split(".")[1])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_scenario_validates_strictly(
    validation_results: dict[str, tuple[int, str]], version: str
) -> None:
    returncode, output = validation_results[version]
    lines = output.splitlines()
    errors = [line for line in lines if not line.startswith("WARN")]
    assert returncode == 0, "\n".join(errors)
    assert not errors, "\n".join(errors)
    # Only the custom resources may lack a built-in schema; a typo in a built-in apiVersion or
    # kind would also show up as "couldn't find schema".
    allowed = CUSTOM_KINDS | (KINDS_SINCE_1_30 if _minor(version) < 30 else set())
    unknown = [
        w for w in lines if w.startswith("WARN") and not any(f"kind {k} " in w for k in allowed)
    ]
    assert not unknown, "\n".join(unknown)


def test_strict_validation_rejects_a_misspelt_field(tmp_path: Path) -> None:
    """kubernetes-validate --strict really is strict: a typo in a Deployment fails it."""
    deployment = yaml.safe_load(
        yaml.safe_dump(render_scenario(SCENARIOS[0]).of_kind("Deployment")[0])
    )
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 5
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(deployment))
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "periodSecond" in proc.stdout


def _strict(node: Any) -> Any:
    """additionalProperties: false on every object schema that lists its properties."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


@cache
def _custom_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = _strict(json.loads((CRD_SCHEMAS / f"{kind}.json").read_text()))
    return schema


def _custom_errors(obj: Obj) -> list[str]:
    validator = jsonschema.Draft202012Validator(_custom_schema(obj["kind"]))
    return [
        f"{kn(obj)} at {'.'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(obj)
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_custom_resources_validate_against_crd_schemas(scenario: Scenario) -> None:
    objects = [o for o in render_scenario(scenario).objects if o["kind"] in CUSTOM_KINDS]
    for obj in objects:
        assert obj["apiVersion"] == (
            "keda.sh/v1alpha1" if obj["kind"] == "ScaledObject" else "monitoring.coreos.com/v1"
        )
        assert not _custom_errors(obj)


def test_crd_validation_rejects_a_misspelt_field() -> None:
    """The CRD check is strict: the same typo kubernetes-validate catches in built-in kinds."""
    production = render_scenario(SCENARIOS[2])
    monitor = yaml.safe_load(yaml.safe_dump(production.of_kind("ServiceMonitor")[0]))
    monitor["spec"]["endpoints"][0]["scrapeTimeot"] = "10s"
    assert any("scrapeTimeot" in e for e in _custom_errors(monitor))
