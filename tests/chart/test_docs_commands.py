"""The kubectl and helm commands of docs/kubernetes.md (release `queue-worker` in namespace
`queue-worker`) name objects the chart renders, in the namespace they are in, and none blocks
the commands after it (a foreground port-forward never exits). The runbook's commands are run
for real by tests/integration/test_runbook.py."""

from __future__ import annotations

import re

import pytest

from tests.chart.helm import ROOT, render

pytestmark = pytest.mark.chart

DOC = (ROOT / "docs" / "kubernetes.md").read_text()
RELEASE = NAMESPACE = "queue-worker"
KINDS = {
    "svc": "Service",
    "deploy": "Deployment",
    "deployment": "Deployment",
    "job": "Job",
    "hpa": "HorizontalPodAutoscaler",
    "networkpolicy": "NetworkPolicy",
}


def commands() -> list[str]:
    """Every command line of the sh blocks (continuations joined) and inline `kubectl ...`."""
    out: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", DOC, re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        out += [line.strip() for line in joined.splitlines() if line.strip()]
    out += [" ".join(m.split()) for m in re.findall(r"`(kubectl -n [^`]+)`", DOC)]
    return [c for c in out if c.startswith(("kubectl ", "helm "))]


def test_kubectl_commands_name_the_namespace_and_rendered_objects() -> None:
    rendered = render(release=RELEASE)
    kubectl = [c for c in commands() if c.startswith("kubectl ")]
    assert len(kubectl) > 8, kubectl
    for command in kubectl:
        if command.startswith(("kubectl create namespace", "kubectl get --raw")):
            continue
        assert command.startswith(f"kubectl -n {NAMESPACE} "), command
        for kind, name in re.findall(r"\b(svc|deploy|deployment|job)/([\w-]+)", command):
            rendered.get(KINDS[kind], name)
        for kind, name in re.findall(r"\b(hpa|networkpolicy) (queue-worker-[\w-]+)", command):
            rendered.get(KINDS[kind], name)


def test_helm_commands_use_the_release_and_namespace() -> None:
    helm = [c for c in commands() if c.startswith("helm ")]
    ours = [c for c in helm if " prometheus-adapter " not in c]
    assert ours
    for command in ours:
        assert f" {RELEASE}" in command, command
        assert f"-n {NAMESPACE}" in command, command


def test_no_command_waits_forever_before_the_next_one() -> None:
    for command in commands():
        if "port-forward" in command:
            assert re.search(r" & sleep \d", command), command
            assert "&&" not in command, command
