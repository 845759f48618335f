"""NOTES.txt, as `helm install` prints it: every command it gives names things the release has
(Services and their ports, the HPA, the worker Deployment, the tokens Secret and key), every curl
hits a route the API serves, and with auth on it sends the token."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from starlette.routing import Route

from services.api.routes import queues, workflows
from services.common.workflow_types import catalogue
from tests.chart.helm import CHART, ROOT, Rendered, helm, name, render

pytestmark = pytest.mark.chart

PRODUCTION = str(ROOT / "deploy/values/production.yaml")
API_ROUTES = [r for r in [*workflows.build_routes(catalogue()), *queues.routes]
              if isinstance(r, Route)]  # fmt: skip


def _notes(tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` prints it. helm template skips NOTES and parses every output
    as YAML, so a copy of the chart renders it inside a YAML document."""
    chart = tmp_path / "queue-worker"
    shutil.copytree(CHART, chart)
    notes = chart / "templates" / "NOTES.txt"
    define = '{{- define "test.notes" -}}\n' + notes.read_text() + "{{- end }}\n"
    (chart / "templates" / "_test_notes.tpl").write_text(define)
    notes.unlink()
    (chart / "templates" / "test-notes.yaml").write_text(
        'notes: |\n{{ include "test.notes" . | indent 2 }}\n'
    )
    out = helm("template", "qw", str(chart), "-n", "queue", *args,
               "--show-only", "templates/test-notes.yaml").stdout  # fmt: skip
    rendered: str = yaml.safe_load(out)["notes"]
    return rendered


def _served(method: str, path: str) -> bool:
    return any(r.path_regex.match(path) and method in (r.methods or set()) for r in API_ROUTES)


def _check_commands(notes: str, rendered: Rendered, *, auth: bool, base: str) -> None:
    for svc, local, port in re.findall(r"port-forward svc/(\S+) (\d+):(\d+)", notes):
        service = rendered.get("Service", svc)
        assert int(port) in [p["port"] for p in service["spec"]["ports"]], svc
        assert f"127.0.0.1:{local}" in base
    for hpa in re.findall(r"get hpa (\S+)", notes):
        rendered.get("HorizontalPodAutoscaler", hpa)
    for deployment in re.findall(r"deployment/(\S+)", notes):
        rendered.get("Deployment", deployment)
    curls = [line.strip() for line in notes.splitlines() if line.strip().startswith("curl ")]
    assert curls, notes
    for curl in curls:
        method = "POST" if "-X POST" in curl else "GET"
        (url,) = re.findall(r"(https?://\S+)", curl)
        assert url.startswith(base), curl
        assert _served(method, url.removeprefix(base)), curl
        assert ('-H "Authorization: Bearer $TOKEN"' in curl) == auth, curl
    if auth:
        (secret, key) = re.findall(r"get secret (\S+) .*index \.data \"(\S+)\"", notes)[0]
        api = rendered.get("Deployment", name("api"))
        tokens = [
            v for v in api["spec"]["template"]["spec"]["volumes"] if v["name"] == "api-tokens"
        ]
        assert tokens[0]["secret"]["secretName"] == secret
        assert key in [i["key"] for i in tokens[0]["secret"]["items"]]
        assert notes.index("TOKEN=") < notes.index("Bearer $TOKEN")  # set before it is used


def test_notes_tell_how_to_reach_watch_and_scale(tmp_path: Path) -> None:
    notes = _notes(tmp_path)
    assert f"port-forward svc/{name('api')} 8000:80" in notes
    assert f"get hpa {name('worker')}" in notes
    assert "queue_worker_queue_backlog?labelSelector=queue%3Dworkflow-queue" in notes
    assert f"scale deployment/{name('worker')} --replicas=5" in notes
    assert "worker.autoscaling.enabled=false" in notes  # how to turn the HPA off first
    assert "helm test qw -n queue" in notes
    assert "throwaway Postgres" in notes
    _check_commands(notes, render(), auth=False, base="http://127.0.0.1:8000")


def test_notes_port_forward_runs_in_the_background_before_the_curl(tmp_path: Path) -> None:
    """`kubectl port-forward ... && curl` never reaches the curl: port-forward does not exit."""
    notes = _notes(tmp_path)
    (line,) = [line for line in notes.splitlines() if "port-forward" in line]
    assert "&&" not in line
    assert re.search(r"port-forward .* & sleep \d", line), line


def test_notes_with_ingress_and_auth_use_the_host_and_send_the_token(tmp_path: Path) -> None:
    notes = _notes(tmp_path, "-f", PRODUCTION, "--set", "worker.autoscaling.enabled=false")
    assert "https://queue-worker.example.com/" in notes
    assert "port-forward" not in notes  # nor does anything refer to one
    assert "get hpa" not in notes
    assert "Autoscaling is on" not in notes
    assert "throwaway Postgres" not in notes
    rendered = render(("production.yaml",), {"worker.autoscaling.enabled": "false"})
    _check_commands(notes, rendered, auth=True, base="https://queue-worker.example.com")


def test_notes_with_auth_and_a_port_forward(tmp_path: Path) -> None:
    values = {"api.ingress.enabled": "false", "api.auth.existingSecretKey": "api-tokens"}
    notes = _notes(tmp_path, "-f", PRODUCTION, *[a for k, v in values.items()
                                                 for a in ("--set", f"{k}={v}")])  # fmt: skip
    assert 'index .data "api-tokens"' in notes
    rendered = render(("production.yaml",), values)
    _check_commands(notes, rendered, auth=True, base="http://127.0.0.1:8000")
