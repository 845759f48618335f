"""The command-line client (`queue-worker enqueue|ls|show|watch|cancel|resume|retry|fork`) as a
user runs it, against a real API and worker: output, --output json, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import running_stack
from tests.support import Stack, enqueue, free_port, wait_for, wait_status


def qw(base: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUE_WORKER_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args, "--url", base],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("queue-worker")
    return lines[0]


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"client-{request.param}")
    with running_stack(request, request.param, workdir, STREAM_POLL_SECONDS="0.1") as s:
        yield s


def test_enqueue_ls_show(stack: Stack) -> None:
    base = stack.base_url
    enq = qw(base, "enqueue", "--num-steps", "2")
    assert enq.returncode == 0, enq.stderr
    wid = enq.stdout.strip()  # the id alone, for $(queue-worker enqueue ...)
    with stack.client() as client:
        wait_status(client, wid, {"SUCCESS"})
    shown = qw(base, "show", wid)
    assert shown.returncode == 0
    assert f"workflow_id: {wid}" in shown.stdout.splitlines()
    assert "workflow_status: SUCCESS" in shown.stdout.splitlines()
    as_json = json.loads(qw(base, "show", wid, "--output", "json").stdout)
    assert as_json["workflow_status"] == "SUCCESS"
    assert as_json["steps_completed"] == as_json["num_steps"] == 2
    typed = qw(base, "enqueue", "--type", "demo", "--input", '{"num_steps": 1}', "--output", "json")
    assert typed.returncode == 0, typed.stderr
    newest = json.loads(typed.stdout)["workflow_id"]
    listed = json.loads(qw(base, "ls", "--limit", "1", "--output", "json").stdout)
    assert [w["workflow_id"] for w in listed] == [newest]
    table = qw(base, "ls", "--status", "SUCCESS").stdout.splitlines()
    assert table[0].split() == ["ID", "STATUS", "PROGRESS", "NAME", "QUEUE", "CREATED"]
    assert any(line.split()[:3] == [wid, "SUCCESS", "2/2"] for line in table[1:])


def test_watch_many_exits_0_when_all_succeed_and_1_when_one_fails(stack: Stack) -> None:
    base = stack.base_url
    ok = [qw(base, "enqueue", "--num-steps", "3", "--step-seconds", "0.2").stdout.strip()]
    ok.append(qw(base, "enqueue", "--num-steps", "2", "--step-seconds", "0.3").stdout.strip())
    watched = qw(base, "watch", *ok)
    assert watched.returncode == 0, watched.stderr
    assert sorted(watched.stdout.splitlines()) == sorted(
        [f"{ok[0]}\tSUCCESS\t3/3", f"{ok[1]}\tSUCCESS\t2/2"]
    )
    failing = qw(
        base, "enqueue", "--type", "fail-after", "--input",
        '{"num_steps": 3, "fail_after_steps": 1, "step_seconds": 0.2}',
    ).stdout.strip()  # fmt: skip
    # Delayed a few seconds, so the watch is surely running before it starts, however slowly
    # this machine starts a process.
    with stack.client() as client:
        slow = enqueue(client, 4, step_seconds=0.3, delay_seconds=5)
    watched = qw(base, "watch", failing, slow, "--output", "json")
    assert watched.returncode == 1, watched.stderr
    states = [json.loads(line) for line in watched.stdout.splitlines()]
    final = {s["workflow_id"]: s["workflow_status"] for s in states}
    assert final == {failing: "ERROR", slow: "SUCCESS"}
    seen = [
        (s["workflow_status"], s["steps_completed"]) for s in states if s["workflow_id"] == slow
    ]
    assert seen[0] == ("DELAYED", 0)  # every state as it came, not only the end
    assert seen[-1] == ("SUCCESS", 4)
    assert [n for _, n in seen] == sorted(n for _, n in seen)


def test_watch_by_polling(stack: Stack) -> None:
    wid = qw(stack.base_url, "enqueue", "--num-steps", "2").stdout.strip()
    watched = qw(stack.base_url, "watch", wid, "--no-stream", "--poll-seconds", "0.1")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout == f"{wid}\tSUCCESS\t2/2\n"


def test_cancel_resume_and_refusals(stack: Stack) -> None:
    base = stack.base_url
    wid = qw(base, "enqueue", "--num-steps", "30", "--step-seconds", "1").stdout.strip()
    cancelled = qw(base, "cancel", wid)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"{wid}\tCANCELLED\n"
    watched = qw(base, "watch", wid)  # a cancelled workflow is a failed watch
    assert watched.returncode == 1
    resumed = qw(base, "resume", wid, "--output", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["workflow_status"] in {"ENQUEUED", "PENDING"}
    assert qw(base, "cancel", wid).returncode == 0
    again = qw(base, "resume", wid)
    assert again.returncode == 0
    done = qw(base, "enqueue", "--num-steps", "1").stdout.strip()
    with stack.client() as client:
        wait_status(client, done, {"SUCCESS"})
    refused = qw(base, "cancel", done)
    assert refused.returncode == 5
    assert "HTTP 409" in one_error_line(refused)
    qw(base, "cancel", wid)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "no-such-id"], 4, "HTTP 404: no workflow with id 'no-such-id'"),
        (["watch", "no-such-id"], 4, "HTTP 404"),
        (["cancel", "no-such-id"], 4, "HTTP 404"),
        (["enqueue", "--num-steps", "2", "--type", "demo"], 2, "either --num-steps"),
        (["enqueue"], 2, "either --num-steps"),
        (["enqueue", "--type", "demo", "--input", "{nope"], 2, "--input is not valid JSON"),
        (["enqueue", "--type", "demo", "--input", "[1]"], 2, "--input must be a JSON object"),
        (["enqueue", "--type", "demo", "--input", '{"num_steps": 0}'], 2, "HTTP 422"),
        (["enqueue", "--type", "no-such-type", "--input", "{}"], 2, "unknown workflow type"),
        (["enqueue", "--num-steps", "0"], 2, "invalid value '0'"),
        (["ls", "--status", "BOGUS"], 2, "HTTP 400: status must be one of"),
        (["fork", "x"], 2, "--start-step"),
        (["watch"], 2, "required"),
        (["ls", "--output", "yaml"], 2, "invalid choice"),
    ],
)
def test_bad_input_exit_codes(stack: Stack, args: list[str], code: int, message: str) -> None:
    before = json.loads(qw(stack.base_url, "ls", "--output", "json", "--limit", "500").stdout)
    result = qw(stack.base_url, *args)
    assert result.returncode == code, result.stderr
    assert message in one_error_line(result)
    assert result.stdout == ""
    after = json.loads(qw(stack.base_url, "ls", "--output", "json", "--limit", "500").stdout)
    assert len(after) == len(before)  # nothing written


def test_unreachable_api_and_bad_url() -> None:
    unreachable = qw(f"http://127.0.0.1:{free_port()}", "ls")
    assert unreachable.returncode == 3
    assert "cannot reach" in one_error_line(unreachable)
    bad = qw("ftp://example", "ls")
    assert bad.returncode == 2
    assert "--url must be an http:// or https:// URL" in one_error_line(bad)


# -- retry and fork: built against the contract of POST /api/workflows/{id}/retry and /fork.
# Those routes are being built in parallel; until they are on main, a small real server that
# implements exactly that contract (and no event stream, so watch must fall back to polling).


def _contract_app(calls: list[tuple[str, Any]]) -> Starlette:
    async def retry(request: Request) -> JSONResponse:
        wid = request.path_params["workflow_id"]
        calls.append(("retry", wid))
        if wid == "still-running":
            return JSONResponse({"error": {"code": "conflict", "message": "not retryable"}}, 409)
        return JSONResponse({"workflow_id": f"{wid}-retried"}, 202)

    async def fork(request: Request) -> JSONResponse:
        wid, body = request.path_params["workflow_id"], await request.json()
        calls.append(("fork", body))
        new = {"workflow_id": f"{wid}-fork", "forked_from": wid, "start_step": body["start_step"]}
        return JSONResponse(new, 202)

    async def get(request: Request) -> JSONResponse:
        calls.append(("get", request.path_params["workflow_id"]))
        done = sum(1 for c in calls if c[0] == "get") >= 3
        return JSONResponse(
            {
                "workflow_id": request.path_params["workflow_id"],
                "workflow_status": "SUCCESS" if done else "PENDING",
                "steps_completed": 2 if done else 1,
                "num_steps": 2,
            }
        )

    return Starlette(
        routes=[
            Route("/api/workflows/{workflow_id}/retry", retry, methods=["POST"]),
            Route("/api/workflows/{workflow_id}/fork", fork, methods=["POST"]),
            Route("/api/workflows/{workflow_id}", get, methods=["GET"]),
        ]
    )


@pytest.fixture
def contract_server() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    calls: list[tuple[str, Any]] = []
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_contract_app(calls), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the contract server")
    yield f"http://127.0.0.1:{port}", calls
    server.should_exit = True
    thread.join(10)


def test_retry_and_fork(contract_server: tuple[str, list[tuple[str, Any]]]) -> None:
    base, calls = contract_server
    retried = qw(base, "retry", "wf-1")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout == "wf-1-retried\n"
    refused = qw(base, "retry", "still-running")
    assert refused.returncode == 5
    assert one_error_line(refused) == "queue-worker: error: HTTP 409: not retryable"
    forked = qw(base, "fork", "wf-1", "--start-step", "2", "--output", "json")
    assert forked.returncode == 0, forked.stderr
    assert json.loads(forked.stdout) == {
        "workflow_id": "wf-1-fork",
        "forked_from": "wf-1",
        "start_step": 2,
    }
    assert ("fork", {"start_step": 2}) in calls
    assert qw(base, "fork", "wf-1", "--start-step", "-1").returncode == 2


def test_watch_falls_back_to_polling_without_streams(
    contract_server: tuple[str, list[tuple[str, Any]]],
) -> None:
    base, calls = contract_server
    watched = qw(base, "watch", "wf-9", "--poll-seconds", "0.1")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout == "wf-9\tSUCCESS\t2/2\n"
    assert [c for c in calls if c[0] == "get"] == [("get", "wf-9")] * 3


def test_retry_and_fork_against_the_real_api(stack: Stack) -> None:
    base = stack.base_url
    failing = qw(base, "enqueue", "--type", "fail-after", "--input",
                 '{"num_steps": 2, "fail_after_steps": 1, "step_seconds": 0.05}')  # fmt: skip
    assert failing.returncode == 0, failing.stderr
    failed_id = failing.stdout.strip()
    assert qw(base, "watch", failed_id, "--poll-seconds", "0.1").returncode == 1
    retried = qw(base, "retry", failed_id)
    assert retried.returncode == 0, retried.stderr
    retry_id = retried.stdout.strip()
    assert retry_id != failed_id
    # The same code fails the same way: the retry ends ERROR too, and watch says so.
    assert qw(base, "watch", retry_id, "--poll-seconds", "0.1").returncode == 1

    done = qw(base, "enqueue", "--num-steps", "3", "--step-seconds", "0.05")
    done_id = done.stdout.strip()
    assert qw(base, "watch", done_id, "--poll-seconds", "0.1").returncode == 0
    forked = qw(base, "fork", done_id, "--start-step", "2", "--output", "json")
    assert forked.returncode == 0, forked.stderr
    body = json.loads(forked.stdout)
    assert body["forked_from"] == done_id
    assert body["start_step"] == 2
    assert qw(base, "watch", body["workflow_id"], "--poll-seconds", "0.1").returncode == 0
    assert qw(base, "retry", done_id).returncode == 5  # a SUCCESS workflow is not retried
