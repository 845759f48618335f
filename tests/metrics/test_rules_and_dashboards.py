"""The shipped rules, dashboards and autoscaler configs, checked without a running Prometheus:
promtool check/test rules, the shape a Grafana sidecar and the chart expect, a runbook section for
every alert, and one autoscaling signal wherever it is consumed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.autoscale.harness import DEPLOY_HPA
from tests.autoscale.hpa import spec_from_manifest
from tests.metrics.prometheus import RULES_DIR, binary, rule_files
from tests.metrics.queries import (
    adapter_rule,
    dashboards,
    keda_query,
    panel_queries,
    render_adapter_query,
    rule_exprs,
)

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "docs" / "runbook.md"
METRICS_DOC = REPO / "docs" / "metrics.md"
SIGNAL_RULE = "queue_worker:queue_backlog:max"
EXTERNAL_METRIC = "queue_worker_queue_backlog"


def _promtool(*args: str) -> str:
    result = subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_check_rules() -> None:
    out = _promtool("check", "rules", *map(str, rule_files()))
    assert out.count("SUCCESS") == len(rule_files())


def test_promtool_unit_tests_pass() -> None:
    tests = sorted((RULES_DIR / "tests").glob("*.yaml"))
    assert tests
    out = _promtool("test", "rules", *map(str, tests))
    assert "SUCCESS" in out


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    alerts = {r.name for r in rule_exprs() if r.kind == "alert"}
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in sorted((RULES_DIR / "tests").glob("*.yaml")):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (fires if t["exp_alerts"] else quiet).add(t["alertname"])
    assert alerts - fires == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested quiet"


def test_rule_files_are_plain_rule_files_usable_as_a_prometheusrule_spec() -> None:
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        assert set(doc) == {"groups"}, f"{path.name}: only `groups:` (a PrometheusRule spec)"
        for group in doc["groups"]:
            assert set(group) <= {"name", "interval", "rules"}, group.keys()


def test_every_alert_has_summary_severity_and_a_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    headings = {h.strip() for h in re.findall(r"^## (.+)$", runbook, flags=re.M)}
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                assert rule["labels"]["severity"] in {"warning", "critical"}, name
                ann = rule["annotations"]
                assert ann["summary"], name
                assert ann["description"], name
                assert ann["runbook"] == f"docs/runbook.md#{name.lower()}", name
                assert name in headings, f"docs/runbook.md has no section '## {name}'"


def test_dashboards_use_the_datasource_variable_everywhere() -> None:
    for name, board in dashboards().items():
        assert board["uid"], name
        assert board["title"], name
        variables = {v["name"]: v for v in board["templating"]["list"]}
        ds = variables["datasource"]
        assert (ds["type"], ds["query"]) == ("datasource", "prometheus"), name
        ids = []
        for panel in board["panels"]:
            ids.append(panel["id"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (
                name,
                panel["title"],
            )
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", (name, panel["title"])
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"


def test_every_metric_and_series_we_query_is_documented() -> None:
    doc = METRICS_DOC.read_text()
    names = set()
    exprs = [q.expr for q in panel_queries()] + [r.expr for r in rule_exprs()]
    for expr in exprs:
        names |= set(re.findall(r"\b(queue_worker[a-z0-9_:]*[a-z0-9])", expr))
    names = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"docs/metrics.md does not describe {missing}"


def test_one_signal_from_recording_rule_to_adapter_keda_and_hpa() -> None:
    records = {r.name: r.expr for r in rule_exprs() if r.kind == "record"}
    assert SIGNAL_RULE in records
    # Deduplicated across API replicas (max), per namespace and queue.
    assert records[SIGNAL_RULE].startswith("max by (namespace, queue)")
    # Only runnable work scales the workers: what a limit holds back would leave replicas idle.
    signal = " ".join(records[SIGNAL_RULE].split())
    assert "(queue_worker_queue_runnable or queue_worker_queue_depth)" in signal
    assert "queue_worker_queue_held" not in signal

    rule = adapter_rule(EXTERNAL_METRIC)
    assert rule.namespaced
    assert re.fullmatch(rule.name_matches, SIGNAL_RULE)
    assert rule.series_query.startswith(SIGNAL_RULE)
    adapter = render_adapter_query(rule, SIGNAL_RULE, {"queue": "workflow-queue"}, "prod")
    selector = '{queue="workflow-queue",namespace="prod"}'
    assert adapter == f"max by (queue) (queue_worker:queue_backlog:max{selector})"

    keda, threshold = keda_query("prod")
    assert keda == adapter
    hpa = spec_from_manifest(yaml.safe_load(DEPLOY_HPA.read_text()), "deploy")
    assert hpa.metric_name == EXTERNAL_METRIC
    assert hpa.selector == {"queue": "workflow-queue"}
    assert threshold * 1000 == hpa.target_milli
