"""docs/runbook.md as an operator runs it: every `curl` and `queue-worker` command of its sh blocks
against a real API (bearer tokens on, as in the production values) and a real worker on Postgres,
each in the situation its section describes; every `kubectl` command names the namespace and
objects the chart renders. A command that fails as written fails here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chart.helm import render
from tests.conftest import running_stack
from tests.support import Stack, wait_status, wait_steps

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()
TOKEN = "runbook-token-0123456789"
# kubectl commands that name no namespace because what they read is cluster-wide.
CLUSTER_SCOPED = ("kubectl get --raw ", "kubectl get apiservice")


def sh_blocks() -> list[tuple[str, list[str]]]:
    """(section heading, command lines) of every ```sh block, in document order."""
    out: list[tuple[str, list[str]]] = []
    section = "intro"
    lines = RUNBOOK.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i][3:].strip()
        if lines[i].strip() == "```sh":
            block = []
            i += 1
            while lines[i].strip() != "```":
                block.append(lines[i].strip())
                i += 1
            out.append((section, [line for line in block if line]))
        i += 1
    return out


def kubectl_commands() -> list[str]:
    in_blocks = [c for _, b in sh_blocks() for c in b if c.startswith("kubectl ")]
    inline = [" ".join(m.split()) for m in re.findall(r"`(kubectl [^`]+)`", RUNBOOK)]
    return in_blocks + inline


def test_every_kubectl_command_names_the_namespace_and_real_objects() -> None:
    commands = kubectl_commands()
    assert len(commands) > 10, commands
    for command in commands:
        if not command.startswith(CLUSTER_SCOPED):
            assert command.startswith("kubectl -n $NS "), command
    rendered = render()  # release qw, as the runbook assumes
    kinds = {"deploy": "Deployment", "svc": "Service", "hpa": "HorizontalPodAutoscaler"}
    for command in commands:
        for short, name in re.findall(r"\b(deploy|svc)/(qw-[\w-]+)", command):
            rendered.get(kinds[short], name)
        for name in re.findall(r"\bhpa (qw-[\w-]+)", command):
            rendered.get(kinds["hpa"], name)


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("runbook")
    env = {
        "API_TOKENS": TOKEN,
        # Compressed liveness, and no sweep: the killed worker's work waits for the operator.
        "WORKER_HEARTBEAT_SECONDS": "0.3",
        "WORKER_DEAD_AFTER_SECONDS": "1.5",
        "WORKER_RECOVERY_SWEEP_SECONDS": "0",
    }
    with running_stack(request, "postgres", workdir, **env) as s:
        yield s


def _http(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.base_url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}
    )


def _run(stack: Stack, command: str, tmp_path: Path) -> tuple[int, str]:
    """One runbook line in bash, with the variables the runbook's first block sets. A curl line
    also writes its status code; any other command its exit status and output."""
    out = tmp_path / "body"
    if command.startswith("curl "):
        command += f" -o {out} -w '%{{http_code}}'"
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, **stack.env, "API": stack.base_url, "TOKEN": TOKEN, "NS": "queue",
           "PATH": f"{venv_bin}:{os.environ['PATH']}"}  # fmt: skip
    proc = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if command.startswith("curl "):
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout), out.read_text()
    return proc.returncode, proc.stdout + proc.stderr


def test_the_runbooks_api_and_cli_commands_work_as_written(stack: Stack, tmp_path: Path) -> None:
    http = _http(stack)
    # The situations the sections speak of.
    failed = http.post(
        "/api/workflows/fail-after", json={"num_steps": 2, "fail_after_steps": 1, "step_seconds": 0}
    ).json()["workflow_id"]
    wait_status(http, failed, {"ERROR"})
    stuck = http.post("/api/workflows", json={"num_steps": 200, "step_seconds": 0.5}).json()
    wait_steps(http, stuck["workflow_id"], 1)
    ids = {
        "QueueWorkerBacklogTooOld": stuck["workflow_id"],
        "QueueWorkerWorkflowsStuckPending": stuck["workflow_id"],
        "QueueWorkerHighFailureRate": failed,
    }
    ran: list[str] = []
    for section, lines in sh_blocks():
        for line in lines:
            if line.startswith(("kubectl ", "API=", "TOKEN=")):
                continue  # checked above; the variables are set for every command
            assert line.startswith(("curl ", "queue-worker ")), f"{section}: {line}"
            if line.startswith("queue-worker recover"):
                _recover(stack, http, line, tmp_path)
            else:
                status, body = _run(stack, line.replace("<id>", ids.get(section, "")), tmp_path)
                assert 200 <= status < 300, f"{section}: {line} -> {status} {body}"
                _check(section, line, body, failed)
            ran.append(line)
    assert any("/cancel" in c for c in ran)
    assert any("queue-worker recover" in c for c in ran)


def _check(section: str, line: str, body: str, failed: str) -> None:
    """What the runbook says the command shows."""
    data: Any = json.loads(body)
    if section == "QueueWorkerHighFailureRate" and "status=ERROR" in line:
        assert failed in [w["workflow_id"] for w in data]
    elif section == "QueueWorkerHighFailureRate":
        assert data["workflow_status"] == "ERROR"
        assert data["error"], data  # the detail carries the error
    elif section == "QueueWorkerBacklogTooOld":
        assert "app_version" in data


def _recover(stack: Stack, http: httpx.Client, line: str, tmp_path: Path) -> None:
    """A worker dies (SIGKILL) with a workflow PENDING; the runbook's recover moves it on."""
    pending = http.post("/api/workflows", json={"num_steps": 200, "step_seconds": 0.5}).json()
    workflow = wait_steps(http, pending["workflow_id"], 1)
    stack.workers[0].kill()
    time.sleep(2.0)  # past WORKER_DEAD_AFTER_SECONDS: recover refuses a live worker
    command = line.replace("<dead executor>", "test-worker-0").replace(
        "<current>", workflow["app_version"]
    )
    code, output = _run(stack, command, tmp_path)
    assert code == 0, output
    after = http.get(f"/api/workflows/{pending['workflow_id']}").json()
    assert after["workflow_status"] == "ENQUEUED", after
    assert after["app_version"] == workflow["app_version"]
