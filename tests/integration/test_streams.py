"""Live streams (SSE) against a real API and worker on Postgres and SQLite: progress pushed until
the end, Last-Event-ID resumes, heartbeats, 404s, bad input, and one poller for every stream."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import running_stack
from tests.support import Stack, enqueue, wait_for, wait_status, wait_steps

HEARTBEAT_SEC = 0.5
ENV = {"STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT_SEC), "STREAM_POLL_SECONDS": "0.1"}


@dataclass(frozen=True)
class Item:
    kind: str  # "event" or "comment"
    name: str = "message"
    id: str | None = None
    data: Any = None
    text: str = ""


def _items(resp: httpx.Response) -> Iterator[Item]:
    name, data, last_id = "message", list[str](), None
    for line in resp.iter_lines():
        if line.startswith(":"):
            yield Item("comment", text=line[1:].strip())
        elif not line:
            if data:
                yield Item("event", name, last_id, json.loads("\n".join(data)))
            name, data = "message", []
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                last_id = value


@contextmanager
def stream(
    base: str, path: str, last_event_id: str | None = None
) -> Iterator[tuple[httpx.Response, Iterator[Item]]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with (
        httpx.Client(timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", base + path, headers=headers) as resp,
    ):
        yield resp, _items(resp)


def events(items: Iterator[Item]) -> Iterator[Item]:
    return (i for i in items if i.kind == "event")


def metric(base: str, name: str) -> float:
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"streams-{request.param}")
    with running_stack(request, request.param, workdir, **ENV) as s:
        yield s


def test_workflow_stream_pushes_progress_then_ends(stack: Stack) -> None:
    with stack.client() as client:
        wid = enqueue(client, 4, step_seconds=0.3)
        with stream(stack.base_url, f"/api/workflows/{wid}/events") as (resp, items):
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            assert resp.headers["cache-control"] == "no-cache"
            assert resp.headers["x-accel-buffering"] == "no"
            received = list(events(items))  # returns only because the server ends the stream
        final = client.get(f"/api/workflows/{wid}").json()
    assert final["workflow_status"] == "SUCCESS"
    assert received[-1].data == final  # the same fields as GET /api/workflows/{id}
    steps = [e.data["steps_completed"] for e in received]
    assert steps == sorted(steps), steps
    assert len(set(steps)) >= 3, steps  # progress on the way, not just the end
    assert all(e.id for e in received)
    assert len({e.id for e in received}) == len(received)
    assert all(e.data["num_steps"] == 4 for e in received)


def test_unknown_workflow_is_404_and_bad_list_query_400(stack: Stack) -> None:
    resp = httpx.get(f"{stack.base_url}/api/workflows/no-such-id/events")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    for query in ("limit=0", "status=BOGUS", "cursor=%%%", "color=red"):
        bad = httpx.get(f"{stack.base_url}/api/workflows/events?{query}")
        assert bad.status_code == 400, query
        assert "error" in bad.json()
    assert httpx.get(f"{stack.base_url}/api/workflows/x/events?color=red").status_code == 400


def test_last_event_id_resumes_with_what_changed(stack: Stack) -> None:
    with stack.client() as client:
        wid = enqueue(client, 8, step_seconds=0.4)
        path = f"/api/workflows/{wid}/events"
        with stream(stack.base_url, path) as (_, items):
            first = next(e for e in events(items) if (e.data["steps_completed"] or 0) >= 1)
        wait_steps(client, wid, first.data["steps_completed"] + 2)
        with stream(stack.base_url, path, last_event_id=first.id) as (_, items):
            resumed = next(events(items))
        # The state now, not a replay from zero and not silence: it has moved on since.
        assert resumed.data["steps_completed"] >= first.data["steps_completed"] + 2
        with stream(stack.base_url, path, last_event_id=resumed.id) as (_, items):
            after = next(events(items))
        assert after.id != resumed.id  # what the client already had is not sent again
        done = wait_status(client, wid, {"SUCCESS"})
        with stream(stack.base_url, path) as (_, items):
            last = list(events(items))[-1]
        assert last.data == done
    # Reconnecting after the final state: 204 tells EventSource to stop reconnecting.
    assert last.id is not None
    again = httpx.get(stack.base_url + path, headers={"Last-Event-ID": last.id})
    assert again.status_code == 204


def test_heartbeat_keeps_a_quiet_stream_open(stack: Stack) -> None:
    with stack.client() as client:
        # Delayed for a minute: nothing about it changes while we listen.
        wid = enqueue(client, 1, delay_seconds=60)
        with stream(stack.base_url, f"/api/workflows/{wid}/events") as (_, items):
            started = time.monotonic()
            seen = []
            for item in items:
                seen.append(item)
                if sum(1 for i in seen if i.text == "keepalive") == 3:
                    break
        assert time.monotonic() - started < 10 * HEARTBEAT_SEC
        assert [i.data["workflow_status"] for i in seen if i.kind == "event"] == ["DELAYED"]
        client.post(f"/api/workflows/{wid}/cancel")


def test_list_stream_snapshot_then_changes_and_resume(stack: Stack) -> None:
    path = "/api/workflows/events?limit=5&status=ENQUEUED,DELAYED,PENDING,SUCCESS"
    with stack.client() as client:
        with stream(stack.base_url, path) as (_, items):
            evs = events(items)
            snapshot = next(e for e in evs if e.name == "list")
            assert snapshot.data["snapshot"] is True
            queues = next(e for e in evs if e.name == "queues")
            assert {q["queue_name"] for q in queues.data} >= {"workflow-queue"}
            wid = enqueue(client, 2, step_seconds=0.5)
            change = next(e for e in evs if e.name == "list" and wid in e.data["order"])
        assert change.data["snapshot"] is False
        assert change.data["order"][0] == wid  # newest first, like GET /api/workflows
        assert [w["workflow_id"] for w in change.data["workflows"]] == [wid]  # only what changed
        # Reconnect after the change: only what changed since, then the workflow's progress.
        with stream(stack.base_url, path, last_event_id=change.id) as (_, items):
            later = next(e for e in events(items) if e.name == "list")
            assert later.data["snapshot"] is False
            assert [w["workflow_id"] for w in later.data["workflows"]] == [wid]
        # An id this process never issued: a snapshot, never a gap.
        with stream(stack.base_url, path, last_event_id="other-replica-7") as (_, items):
            fresh = next(e for e in events(items) if e.name == "list")
        assert fresh.data["snapshot"] is True
        assert wid in fresh.data["order"]


def test_one_poller_serves_every_stream(stack: Stack) -> None:
    """Statements per poll are the same with 1 and with 21 open streams on the same topics."""
    base = stack.base_url

    def poller_stopped() -> bool:
        return metric(base, "queue_worker_stream_poller_running") == 0

    # Earlier tests' list topics linger for resumes; start from a poller with nothing to do.
    wait_for(poller_stopped, timeout=30, what="the poller to stop")
    with stack.client() as client:
        wid = enqueue(client, 1, delay_seconds=60)
        list_path = "/api/workflows/events?limit=10"

        def per_poll(streams: int) -> float:
            with ExitStack() as opened:
                # Keep every reader: a collected httpx line iterator closes its connection.
                readers: list[Iterator[Item]] = []
                for n in range(streams):
                    _, items = opened.enter_context(
                        stream(base, f"/api/workflows/{wid}/events" if n % 2 else list_path)
                    )
                    next(events(items))  # connected and served
                    readers.append(items)
                polls0 = metric(base, "queue_worker_stream_polls_total")
                stmts0 = metric(base, "queue_worker_stream_poll_statements_total")
                wait_for(
                    lambda: metric(base, "queue_worker_stream_polls_total") >= polls0 + 10,
                    timeout=30,
                    what="ten polls",
                )
                assert metric(base, "queue_worker_stream_subscribers") == streams
                polls = metric(base, "queue_worker_stream_polls_total") - polls0
                stmts = metric(base, "queue_worker_stream_poll_statements_total") - stmts0
                return stmts / polls

        one, many = per_poll(2), per_poll(42)  # one workflow and one list stream, then 21 of each
        # One statement for the workflows, one for the list, the queue counts every ~2 s.
        assert one <= 2.5, one
        assert many <= one * 1.2, (one, many)
        client.post(f"/api/workflows/{wid}/cancel")
    # Nobody listens (list topics linger 10 s for resumes): the poller stops.
    wait_for(poller_stopped, timeout=30, what="the poller to stop")


def test_streams_end_when_the_api_stops(sqlite_url: str, tmp_path: Path) -> None:
    stack = Stack(sqlite_url, tmp_path, **ENV)
    try:
        api = stack.start_api()
        ended = threading.Event()

        def listen() -> None:
            with stream(stack.base_url, "/api/workflows/events") as (_, items):
                for _ in items:
                    pass
            ended.set()

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_for(
            lambda: metric(stack.base_url, "queue_worker_stream_subscribers") == 1,
            timeout=10,
            what="the stream to open",
        )
        started = time.monotonic()
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
        assert api.terminate(timeout=15) in (0, -signal.SIGTERM)
        assert ended.wait(5)
        # Well inside uvicorn's 10 s graceful timeout: the open stream did not hold it up.
        assert time.monotonic() - started < 8
    finally:
        stack.stop()
