"""The chart's copy of the monitoring files is deploy/'s, byte for byte, and renders unchanged.

deploy/grafana/ and deploy/prometheus/ are the sources of truth; helm can only read files inside
the chart, so scripts/sync-chart-files.sh copies them to charts/queue-worker/files/. These tests
fail when someone edits one side only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart.helm import CHART, ROOT, helm, name, render

pytestmark = pytest.mark.chart

SCRIPT = ROOT / "scripts" / "sync-chart-files.sh"
MONITORING = {
    "metrics.serviceMonitor.enabled": "true",
    "metrics.prometheusRule.enabled": "true",
    "metrics.grafanaDashboards.enabled": "true",
}


def _dashboards() -> list[Path]:
    return sorted((ROOT / "deploy" / "grafana").glob("*.json"))


def _rule_files() -> list[Path]:
    """Top-level rule files (with `groups:`); the promtool tests under tests/ are not rules."""
    files = sorted((ROOT / "deploy" / "prometheus").glob("*.yaml"))
    return [f for f in files if "groups" in (yaml.safe_load(f.read_text()) or {})]


def test_sources_exist() -> None:
    assert _dashboards(), "no deploy/grafana/*.json"
    assert _rule_files(), "no rule file in deploy/prometheus/"


def test_chart_copy_matches_deploy_byte_for_byte() -> None:
    for sources, copies in (
        (_dashboards(), CHART / "files" / "grafana"),
        (_rule_files(), CHART / "files" / "prometheus"),
    ):
        assert sorted(p.name for p in copies.iterdir()) == [p.name for p in sources], copies
        for source in sources:
            assert (copies / source.name).read_bytes() == source.read_bytes(), (
                f"{copies / source.name} drifted from {source}: run scripts/sync-chart-files.sh"
            )


def test_sync_script_check_passes() -> None:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sync_script_detects_and_repairs_drift(tmp_path: Path) -> None:
    """In a scratch copy of the layout: an edited source, a new one and a stale copy."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / SCRIPT.name)
    shutil.copytree(ROOT / "deploy" / "grafana", tmp_path / "deploy" / "grafana")
    shutil.copytree(ROOT / "deploy" / "prometheus", tmp_path / "deploy" / "prometheus")
    shutil.copytree(CHART / "files", tmp_path / "charts" / "queue-worker" / "files")
    files = tmp_path / "charts" / "queue-worker" / "files"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(tmp_path / "scripts" / SCRIPT.name), *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    assert run().returncode == 0  # whatever state the work tree is in, start in sync
    assert run("--check").returncode == 0
    first = _dashboards()[0].name
    (tmp_path / "deploy" / "grafana" / first).write_text('{"title": "edited"}\n')
    (tmp_path / "deploy" / "prometheus" / "new-rules.yaml").write_text("groups: []\n")
    (files / "grafana" / "removed.json").write_text("{}\n")
    check = run("--check")
    assert check.returncode == 1
    assert f"grafana/{first} differs" in check.stdout
    assert "new-rules.yaml" in check.stdout
    assert "removed.json has no source" in check.stdout
    assert run().returncode == 0
    assert run("--check").returncode == 0
    assert (files / "grafana" / first).read_text() == '{"title": "edited"}\n'
    assert not (files / "grafana" / "removed.json").exists()
    # The promtool tests are not rule files: never copied.
    assert not list(files.rglob("*test*"))


def test_prometheus_rules_render_the_deploy_groups_unchanged() -> None:
    rendered = render(set_values=MONITORING)
    for source in _rule_files():
        rule = rendered.get("PrometheusRule", name(source.stem))
        assert rule["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"]


def test_dashboards_render_as_sidecar_configmaps_unchanged() -> None:
    rendered = render(set_values=MONITORING)
    for source in _dashboards():
        configmap = rendered.get("ConfigMap", name(source.stem))
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["data"][source.name] == source.read_text().rstrip("\n")
        assert json.loads(configmap["data"][source.name]) == json.loads(source.read_text())


def test_monitoring_switches_fail_clearly_without_files(tmp_path: Path) -> None:
    """A chart packaged without its files/ (a broken sync) refuses to render empty objects."""
    chart = tmp_path / "queue-worker"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))

    proc = helm(
        "template", "qw", str(chart), "--set", "metrics.prometheusRule.enabled=true", check=False
    )
    assert proc.returncode != 0
    assert "run scripts/sync-chart-files.sh" in proc.stderr


def test_packaged_chart_carries_the_monitoring_files(tmp_path: Path) -> None:
    """`helm package` (what a chart repository serves) keeps files/: .helmignore drops none."""
    helm("package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("queue-worker-*.tgz")
    args = [f"{k}={v}" for k, v in MONITORING.items()]
    out = helm("template", "qw", str(package), *[a for kv in args for a in ("--set", kv)]).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(out) if d]
    assert kinds.count("PrometheusRule") == len(_rule_files())
    assert kinds.count("ConfigMap") == len(_dashboards())
