"""The monitoring files live once, in the chart (helm reads only files inside a chart):
charts/queue-worker/files/grafana/*.json and files/prometheus/*.yaml render unchanged into the
dashboards' ConfigMaps and the PrometheusRules, and a packaged chart carries them (without the
rules' promtool tests). A Prometheus without the Operator loads the same rule files.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.chart.helm import CHART, ROOT, helm, name, render

pytestmark = pytest.mark.chart

MONITORING = {
    "metrics.serviceMonitor.enabled": "true",
    "metrics.prometheusRule.enabled": "true",
    "metrics.grafanaDashboards.enabled": "true",
}


def _dashboards() -> list[Path]:
    return sorted((CHART / "files" / "grafana").glob("*.json"))


def _rule_files() -> list[Path]:
    """Top-level rule files (with `groups:`); the promtool tests under tests/ are not rules."""
    files = sorted((CHART / "files" / "prometheus").glob("*.yaml"))
    return [f for f in files if "groups" in (yaml.safe_load(f.read_text()) or {})]


def test_sources_exist() -> None:
    assert _dashboards(), "no files/grafana/*.json in the chart"
    assert _rule_files(), "no rule file in the chart's files/prometheus/"
    # One copy: nothing outside the chart holds another (deploy/ had one, kept equal by a script).
    for path in [*_dashboards(), *_rule_files()]:
        assert not list((ROOT / "deploy").rglob(path.name)), path.name


def test_prometheus_rules_render_the_rule_files_unchanged() -> None:
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
    """A chart copied without its files/ refuses to render empty objects."""
    chart = tmp_path / "queue-worker"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))

    proc = helm(
        "template", "qw", str(chart), "--set", "metrics.prometheusRule.enabled=true", check=False
    )
    assert proc.returncode != 0
    assert "the chart has no files/prometheus/*.yaml" in proc.stderr


def test_packaged_chart_carries_the_monitoring_files(tmp_path: Path) -> None:
    """`helm package` (what a chart repository serves) keeps files/ but not the rules' tests."""
    helm("package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("queue-worker-*.tgz")
    with tarfile.open(package) as tar:
        names = tar.getnames()
    assert "queue-worker/files/prometheus/alerts.yaml" in names
    assert not [n for n in names if "/files/prometheus/tests/" in n], names
    args = [f"{k}={v}" for k, v in MONITORING.items()]
    out = helm("template", "qw", str(package), *[a for kv in args for a in ("--set", kv)]).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(out) if d]
    assert kinds.count("PrometheusRule") == len(_rule_files())
    assert kinds.count("ConfigMap") == len(_dashboards())
