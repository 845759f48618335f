"""The API's NetworkPolicy and Prometheus: the API serves /metrics, the autoscaling signal, on
the same port as /api, so whoever may scrape must be admitted to that port as well."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.chart.helm import Obj, helm, name, template_args

pytestmark = pytest.mark.chart

INGRESS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
MONITORING = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def _template(**peers: list[Obj]) -> subprocess.CompletedProcess[str]:
    args = template_args()
    for key, value in peers.items():
        args += ["--set-json", f"networkPolicy.{key}={json.dumps(value)}"]
    return helm(*args, check=False)


def _policy(component: str, **peers: list[Obj]) -> Obj:
    proc = _template(**peers)
    assert proc.returncode == 0, proc.stderr
    for doc in yaml.safe_load_all(proc.stdout):
        if doc and doc["kind"] == "NetworkPolicy" and doc["metadata"]["name"] == name(component):
            return dict(doc)
    raise AssertionError(f"no NetworkPolicy {name(component)}")


def _peers_on(policy: Obj, port: str) -> list[Obj] | None:
    """Peers admitted to `port` by the policy's ingress rules; None when a rule admits anyone."""
    peers: list[Obj] = []
    rules = [r for r in policy["spec"]["ingress"] if port in [p["port"] for p in r["ports"]]]
    assert rules, f"nothing may reach {port}"
    for rule in rules:
        if "from" not in rule:
            return None
        peers += rule["from"]
    return peers


def test_with_api_from_set_prometheus_may_still_scrape_the_api() -> None:
    peers = _peers_on(_policy("api", apiFrom=INGRESS, metricsFrom=MONITORING), "http")
    assert peers is not None, "apiFrom is set, yet the API port is open to everyone"
    assert INGRESS[0] in peers
    assert MONITORING[0] in peers  # Prometheus reaches the API's /metrics
    worker = _policy("worker", apiFrom=INGRESS, metricsFrom=MONITORING)
    assert _peers_on(worker, "metrics") == MONITORING  # and the workers' metrics port


def test_api_from_without_metrics_from_is_refused_rather_than_blocking_prometheus() -> None:
    proc = _template(apiFrom=INGRESS)
    assert proc.returncode != 0, "rendered a policy that shuts Prometheus out of the API"
    assert "networkPolicy.apiFrom" in proc.stderr
    assert "set networkPolicy.metricsFrom" in proc.stderr


def test_metrics_from_alone_limits_only_the_metrics_ports() -> None:
    assert _peers_on(_policy("api", metricsFrom=MONITORING), "http") is None  # API open
    assert _peers_on(_policy("worker", metricsFrom=MONITORING), "metrics") == MONITORING


def test_with_neither_set_everyone_may_reach_the_api_and_scrape() -> None:
    assert _peers_on(_policy("api"), "http") is None
    assert _peers_on(_policy("worker"), "metrics") is None
