"""Every PromQL expression we ship, extracted from the files users install.

- the Grafana dashboards (charts/queue-worker/files/grafana/*.json), with Grafana's variables
  substituted as a user who selects "All" would see them;
- the recording and alerting rules (charts/queue-worker/files/prometheus/*.yaml);
- the prometheus-adapter external rule (deploy/prometheus-adapter/values.yaml), rendered the way
  the adapter renders it (pkg/naming/metrics_query.go BuildExternal: the selector's label matchers
  in key order, then namespace="<the HPA's namespace>"; GroupBy is empty for external metrics);
- the KEDA ScaledObject's trigger query (deploy/keda/scaledobject.yaml).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "charts" / "queue-worker" / "files"
DASHBOARDS = FILES / "grafana"
RULES = FILES / "prometheus"
ADAPTER_VALUES = REPO / "deploy" / "prometheus-adapter" / "values.yaml"
KEDA_SCALEDOBJECT = REPO / "deploy" / "keda" / "scaledobject.yaml"

# What Grafana puts in place of its variables when the user picks "All" (allValue: .*).
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "30s",
    "$__interval": "15s",
    "$namespace": ".*",
    "$queue": ".*",
    "${datasource}": "prometheus",
}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str


@dataclass(frozen=True)
class RuleExpr:
    file: str
    kind: str  # "record" or "alert"
    name: str
    expr: str


def grafana_substitute(expr: str) -> str:
    for var, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(var, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    assert not leftover, f"unknown Grafana variable {leftover} in {expr}"
    return expr


def dashboards() -> dict[str, dict[str, Any]]:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARDS}"
    return {f.name: json.loads(f.read_text()) for f in files}


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))
    return out


def panel_queries() -> list[PanelQuery]:
    queries = []
    for name, board in dashboards().items():
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                queries.append(PanelQuery(name, panel["title"], grafana_substitute(target["expr"])))
    return queries


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, label, series selector) of every label_values() template variable."""
    out = []
    for name, board in dashboards().items():
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
            assert m, f"{name}: variable {var['name']} is not label_values(...): {query}"
            out.append((name, m.group(2), grafana_substitute(m.group(1))))
    return out


def rule_exprs() -> list[RuleExpr]:
    out = []
    for path in sorted(RULES.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                kind = "record" if "record" in rule else "alert"
                out.append(RuleExpr(path.name, kind, rule[kind], str(rule["expr"])))
    return out


# PromQL words that look like metric names but are not (aggregations may precede `by`).
_KEYWORDS = {
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "le",
}
_SELECTOR = re.compile(r"(?<![\w:\"$.])([a-zA-Z_:][\w:]*)(?![\w:])\s*(\{[^}]*\})?")


def selectors_in(expr: str) -> list[str]:
    """The vector selectors of an expression (metric name plus its matchers)."""
    found = []
    for m in _SELECTOR.finditer(expr):
        name, matchers = m.group(1), m.group(2) or ""
        if name in _KEYWORDS or (not matchers and expr[m.end() :].lstrip().startswith("(")):
            continue  # a keyword or a function call
        # Label names inside by (...) / on (...) clauses: skip names directly inside such lists.
        before = expr[: m.start()].rstrip()
        if re.search(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*$", before):
            continue
        found.append(f"{name}{matchers}")
    return found


@dataclass(frozen=True)
class AdapterRule:
    series_query: str
    name_matches: str
    name_as: str
    metrics_query: str
    namespaced: bool


def adapter_rule(metric: str) -> AdapterRule:
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    for rule in values["rules"]["external"]:
        if rule["name"]["as"] == metric:
            resources = rule.get("resources", {})
            namespaced = resources.get("namespaced", True) and "namespace" in resources.get(
                "overrides", {}
            )
            return AdapterRule(
                series_query=rule["seriesQuery"],
                name_matches=rule["name"]["matches"],
                name_as=rule["name"]["as"],
                metrics_query=rule["metricsQuery"],
                namespaced=bool(namespaced),
            )
    raise AssertionError(f"no external rule serves {metric} in {ADAPTER_VALUES}")


def render_adapter_query(
    rule: AdapterRule, series: str, selector: dict[str, str], namespace: str
) -> str:
    """The PromQL the adapter sends for GET .../namespaces/<namespace>/<metric>?labelSelector=."""
    matchers = [f'{k}="{v}"' for k, v in sorted(selector.items())]
    if rule.namespaced:
        matchers.append(f'namespace="{namespace}"')
    query = (
        rule.metrics_query.replace("<<.Series>>", series)
        .replace("<<.LabelMatchers>>", ",".join(matchers))
        .replace("<<.GroupBy>>", "")
    )
    assert "<<" not in query, f"unsupported template field in {rule.metrics_query}"
    return query


def keda_query(namespace: str) -> tuple[str, float]:
    """The ScaledObject trigger's query (namespace written in) and its threshold."""
    obj = yaml.safe_load(KEDA_SCALEDOBJECT.read_text())
    trigger = next(t for t in obj["spec"]["triggers"] if t["type"] == "prometheus")
    query = str(trigger["metadata"]["query"]).replace("NAMESPACE", namespace)
    return query, float(trigger["metadata"]["threshold"])
