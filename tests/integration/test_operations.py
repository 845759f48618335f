"""Issue 13's operations over real HTTP, a real worker and a real database (Postgres and SQLite):
a workflow's steps, input, result and error; the dead letters; fork; retry; bulk retry and cancel;
hostile input refused with nothing written."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.common.names import WORKFLOW_QUEUE
from services.common.sql import create_engine
from tests.integration.test_api import assert_matches, row_count
from tests.support import Stack, enqueue, wait_for, wait_status, wait_steps


def fail_after(http: httpx.Client, steps: int = 3, fail_after_steps: int = 2, **extra: Any) -> str:
    body = {"num_steps": steps, "fail_after_steps": fail_after_steps, "step_seconds": 0.05}
    resp = http.post("/api/workflows/fail-after", json={**body, **extra})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["workflow_id"])


def failed(http: httpx.Client, **kw: Any) -> str:
    workflow_id = fail_after(http, **kw)
    wait_status(http, workflow_id, {"ERROR"})
    return workflow_id


def stored_errors(stack: Stack, workflow_id: str) -> tuple[str | None, str | None]:
    """workflow_status.error and workflow_output.error as DBOS wrote them."""
    engine = create_engine(stack.database_url)
    s = "dbos." if engine.dialect.name == "postgresql" else ""
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    f"SELECT ws.error, wo.error FROM {s}workflow_status ws "
                    f"LEFT JOIN {s}workflow_output wo ON wo.workflow_uuid = ws.workflow_uuid "
                    "WHERE ws.workflow_uuid = :w"
                ),
                {"w": workflow_id},
            ).one()
    finally:
        engine.dispose()
    return row[0], row[1]


def test_a_failed_workflow_shows_its_error_input_and_steps(
    stack: Stack, http: httpx.Client, spec: dict[str, Any]
) -> None:
    """The bug: fail-after ended ERROR with `error: null`: DBOS 3.4 keeps the error in
    workflow_output, and the API read workflow_status.error, which it leaves NULL."""
    workflow_id = failed(http, steps=3, fail_after_steps=2)
    status_error, output_error = stored_errors(stack, workflow_id)
    assert status_error is None
    assert output_error is not None
    assert '"name":"IntendedFailure"' in output_error  # portable JSON, as the API enqueues
    detail = http.get(f"/api/workflows/{workflow_id}").json()
    assert detail["error"] == "IntendedFailure: failed on purpose after 2 of 3 steps"
    assert detail["input"] == {"num_steps": 3, "fail_after_steps": 2, "step_seconds": 0.05}
    assert detail["result"] is None
    assert_matches(spec, "WorkflowDetail", detail)

    resp = http.get(f"/api/workflows/{workflow_id}/steps")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches(spec, "Steps", body)
    assert body["workflow_status"] == "ERROR"
    assert body["dispatches"] == 1
    demo_steps = [s for s in body["steps"] if s["name"].endswith("demo_step")]
    assert [s["output"] for s in demo_steps] == [0, 1]
    ids = [s["function_id"] for s in body["steps"]]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    for s in demo_steps:
        assert s["status"] == "SUCCESS"
        assert s["error"] is None
        assert s["attempts"] == 1
        assert s["reexecuted"] is False
        assert s["duration_ms"] >= 40  # 0.05 s steps
        assert s["started_at"] <= s["completed_at"]


def test_a_successful_workflow_shows_its_result_and_pages_its_steps(http: httpx.Client) -> None:
    workflow_id = enqueue(http, 4, step_seconds=0.01)
    done = wait_status(http, workflow_id, {"SUCCESS"})
    assert done["result"] == {"steps_completed": 4, "num_steps": 4}
    assert done["input"] == {"num_steps": 4, "step_seconds": 0.01}
    assert done["error"] is None
    all_steps = http.get(f"/api/workflows/{workflow_id}/steps").json()["steps"]
    seen: list[int] = []
    url: str | None = f"/api/workflows/{workflow_id}/steps?limit=3"
    while url:
        resp = http.get(url)
        seen += [s["function_id"] for s in resp.json()["steps"]]
        url = resp.links.get("next", {}).get("url")
    assert seen == [s["function_id"] for s in all_steps]
    assert len([s for s in all_steps if s["name"].endswith("demo_step")]) == 4


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/workflows/no-such-id/steps", 404),
        ("/api/workflows/no-such-id/steps?limit=0", 400),
        ("/api/workflows/x/steps?limit=abc", 400),
        ("/api/workflows/x/steps?after=-1", 400),
        ("/api/workflows/x/steps?bogus=1", 400),
        ("/api/workflows/%00/steps", 404),
        ("/api/dead-letter?status=SUCCESS", 400),
        ("/api/dead-letter?created_after=yesterday", 400),
        ("/api/dead-letter?error=", 400),
        ("/api/dead-letter?limit=501", 400),
        ("/api/dead-letter?cursor=zzz", 400),
        ("/api/dead-letter?forked=maybe", 400),
        ("/api/dead-letter?nope=1", 400),
    ],
)
def test_bad_reads_are_refused_with_a_message(http: httpx.Client, path: str, status: int) -> None:
    resp = http.get(path)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["message"]


def test_dead_letters_filter_by_type_queue_error_and_time(
    http: httpx.Client, spec: dict[str, Any]
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=2)
    a = failed(http, steps=2, fail_after_steps=0)
    b = failed(http, steps=3, fail_after_steps=1)
    ok = enqueue(http, 1, step_seconds=0)
    wait_status(http, ok, {"SUCCESS"})

    def ids(**params: Any) -> list[str]:
        resp = http.get("/api/dead-letter", params=params)
        assert resp.status_code == 200, resp.text
        return [w["workflow_id"] for w in resp.json()]

    recent = ids(created_after=started.isoformat())
    # Newest first (SQLite's created_at has one-second resolution: then by id, descending);
    # the SUCCESS one is not a dead letter.
    assert set(recent[:2]) == {a, b}
    assert ok not in recent
    item = next(
        w
        for w in http.get("/api/dead-letter", params={"created_after": started.isoformat()}).json()
        if w["workflow_id"] == b
    )
    assert item["error"] == "IntendedFailure: failed on purpose after 1 of 3 steps"
    assert item["workflow_status"] == "ERROR"
    assert_matches(spec, "DeadLetter", item)
    assert ids(error="AFTER 1 OF 3", created_after=started.isoformat()) == [b]
    assert ids(error="100%_", created_after=started.isoformat()) == []  # LIKE wildcards are text
    assert ids(name="demo_workflow", created_after=started.isoformat()) == []
    assert b in ids(name="fail-after", queue=WORKFLOW_QUEUE)
    assert ids(queue="no-such-queue") == []
    assert ids(created_before=started.isoformat(), created_after=started.isoformat()) == []
    page = http.get("/api/dead-letter", params={"limit": 1, "created_after": started.isoformat()})
    assert len(page.json()) == 1
    assert "next" in page.links
    following = http.get(page.links["next"]["url"]).json()[0]["workflow_id"]
    assert [page.json()[0]["workflow_id"], following] == recent[:2]


def test_fork_from_a_step_replays_the_steps_before_it(
    stack: Stack, http: httpx.Client, spec: dict[str, Any]
) -> None:
    original = failed(http, steps=3, fail_after_steps=2)
    steps = http.get(f"/api/workflows/{original}/steps").json()["steps"]
    last = steps[-1]["function_id"]
    before = row_count(stack)
    for body, status in [
        ({}, 422),
        ({"start_step": 0}, 422),
        ({"start_step": "2"}, 422),
        ({"start_step": True}, 422),
        ({"start_step": last + 2}, 422),
        ({"start_step": 1, "extra": 1}, 422),
    ]:
        resp = http.post(f"/api/workflows/{original}/fork", json=body)
        assert resp.status_code == status, (body, resp.text)
        assert resp.json()["error"]["field"]
    assert http.post("/api/workflows/nope/fork", json={"start_step": 1}).status_code == 404
    assert http.post(f"/api/workflows/{original}/fork", content=b"{").status_code == 415
    assert row_count(stack) == before

    second = next(s for s in steps if s["name"].endswith("demo_step") and s["output"] == 1)
    resp = http.post(f"/api/workflows/{original}/fork", json={"start_step": second["function_id"]})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert_matches(spec, "ForkResponse", body)
    assert body["forked_from"] == original
    assert body["start_step"] == second["function_id"]
    fork = wait_status(http, body["workflow_id"], {"ERROR"})
    assert fork["forked_from"] == original
    assert fork["error"] == "IntendedFailure: failed on purpose after 2 of 3 steps"
    forked_steps = http.get(f"/api/workflows/{body['workflow_id']}/steps").json()["steps"]
    copied = [s for s in forked_steps if s["function_id"] < second["function_id"]]
    assert copied == [s for s in steps if s["function_id"] < second["function_id"]]
    rerun = next(s for s in forked_steps if s["function_id"] == second["function_id"])
    assert rerun["started_at"] > second["completed_at"]  # ran again, not copied


def test_retry_forks_an_error_once_and_resumes_a_cancelled_one(
    stack: Stack, http: httpx.Client, spec: dict[str, Any]
) -> None:
    original = fail_after(http, steps=3, fail_after_steps=3)
    wait_status(http, original, {"ERROR"})
    # Repeated at once, while the retry (3 steps of 0.05 s) most likely still runs: the same run.
    first = http.post(f"/api/workflows/{original}/retry")
    assert first.status_code == 202, first.text
    assert_matches(spec, "RetryResponse", first.json())
    retry_id = first.json()["workflow_id"]
    assert retry_id == f"{original}-retry-1"
    assert first.json()["outcome"] == "forked"
    again = http.post(f"/api/workflows/{original}/retry")
    assert again.status_code == 202
    if wait_status(http, retry_id, {"ERROR", "PENDING", "ENQUEUED"})["workflow_status"] != "ERROR":
        assert again.json()["workflow_id"] == retry_id
        assert again.json()["outcome"] == "already_retried"
    wait_status(http, retry_id, {"ERROR"})
    rows = row_count(stack)
    # The retry failed too: retrying it (or the original) makes the next one in the chain.
    nxt = http.post(f"/api/workflows/{retry_id}/retry").json()
    assert nxt["workflow_id"] in {f"{original}-retry-2", f"{original}-retry-3"}
    assert row_count(stack) <= rows + 1

    slow = enqueue(http, 20, step_seconds=0.2)
    wait_status(http, slow, {"PENDING"})
    assert http.post(f"/api/workflows/{slow}/cancel").status_code == 202
    wait_status(http, slow, {"CANCELLED"})
    resumed = http.post(f"/api/workflows/{slow}/retry")
    assert resumed.status_code == 202
    assert resumed.json()["workflow_id"] == slow
    assert resumed.json()["outcome"] == "resumed"
    refused = http.post(f"/api/workflows/{slow}/retry")  # no longer CANCELLED
    assert refused.status_code == 409
    assert "can be retried" in refused.json()["error"]["message"]
    http.post(f"/api/workflows/{slow}/cancel")
    assert http.post("/api/workflows/nope/retry").status_code == 404


def test_bulk_retry_dry_run_then_act_and_repeat_safely(
    stack: Stack, http: httpx.Client, spec: dict[str, Any]
) -> None:
    tag_error = "after 1 of 2 steps"
    started = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    originals = [failed(http, steps=2, fail_after_steps=1) for _ in range(3)]
    # created_before: the retries this test makes fail too, and a later call by this filter
    # would rightly retry them; the originals alone are what "repeat" is about here.
    cutoff = (datetime.now(UTC) + timedelta(milliseconds=1)).isoformat()
    time.sleep(1.1)  # SQLite's created_at has one-second resolution
    flt = {
        "name": ["fail-after"],
        "error": tag_error,
        "created_after": started,
        "created_before": cutoff,
    }
    dry = http.post("/api/workflows/bulk/retry", json={"filter": flt, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert_matches(spec, "BulkResponse", dry.json())
    assert dry.json()["count"] == 3
    assert sorted(dry.json()["workflow_ids"]) == sorted(originals)
    assert dry.json()["more"] is False
    before = row_count(stack)
    one = http.post("/api/workflows/bulk/retry", json={"filter": flt, "limit": 2})
    assert one.status_code == 202, one.text
    assert one.json()["count"] == 2
    assert one.json()["more"] is True
    # Oldest first (on SQLite, created_at has one-second resolution: then by id).
    rest = http.post("/api/workflows/bulk/retry", json={"filter": flt})
    assert sorted(one.json()["workflow_ids"] + rest.json()["workflow_ids"]) == sorted(originals)
    assert row_count(stack) == before + 3
    # Repeating, by filter or by ids, makes no second retry of anything still running or done.
    assert http.post("/api/workflows/bulk/retry", json={"filter": flt}).json()["count"] == 0
    for wid in originals:
        wait_status(http, f"{wid}-retry-1", {"ERROR"})
    by_ids = http.post("/api/workflows/bulk/retry", json={"workflow_ids": [*originals, "nope"]})
    assert by_ids.json()["skipped"] == [{"workflow_id": "nope", "reason": "no such workflow"}]
    assert {r["retry_workflow_id"] for r in by_ids.json()["results"]} == {
        f"{w}-retry-2" for w in originals
    }
    assert row_count(stack) == before + 6
    log = stack.api.log() if stack.api else ""
    assert "bulk retry (dry run) by anonymous@127.0.0.1: matched 3, acted on 3" in log
    assert "bulk retry by anonymous@127.0.0.1: matched 3, acted on 2" in log


def test_bulk_cancel_by_filter(http: httpx.Client) -> None:
    started = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    delayed = [enqueue(http, 1, delay_seconds=600) for _ in range(3)]
    flt = {"status": ["DELAYED"], "created_after": started}
    dry = http.post("/api/workflows/bulk/cancel", json={"filter": flt, "dry_run": True}).json()
    assert sorted(dry["workflow_ids"]) == sorted(delayed)
    assert dry["dry_run"] is True
    for wid in delayed:
        assert http.get(f"/api/workflows/{wid}").json()["workflow_status"] == "DELAYED"
    done = http.post("/api/workflows/bulk/cancel", json={"filter": flt})
    assert done.status_code == 202
    assert done.json()["count"] == 3
    for wid in delayed:
        wait_status(http, wid, {"CANCELLED"})
    again = http.post("/api/workflows/bulk/cancel", json={"workflow_ids": delayed}).json()
    assert again["count"] == 0
    assert len(again["skipped"]) == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"workflow_ids": ["a"], "filter": {}},
        {"workflow_ids": []},
        {"workflow_ids": "a"},
        {"workflow_ids": [1]},
        {"workflow_ids": [f"id-{i}" for i in range(1001)]},
        {"filter": {"status": ["SUCCESS"]}},
        {"filter": {"colour": "red"}},
        {"filter": {"created_after": "soon"}},
        {"filter": {"error": ""}},
        {"filter": {"forked": None}},
        {"filter": {"forked": "yes"}},
        {"filter": {"name": [None]}},
        {"filter": []},
        {"filter": {}, "dry_run": "yes"},
        {"filter": {}, "limit": 1001},
        {"filter": {}, "limit": 0},
        {"filter": {}, "extra": 1},
    ],
)
def test_bad_bulk_bodies_are_refused_and_write_nothing(
    stack: Stack, http: httpx.Client, body: dict[str, Any]
) -> None:
    before = row_count(stack)
    for action in ("retry", "cancel"):
        resp = http.post(f"/api/workflows/bulk/{action}", json=body)
        assert resp.status_code == 422, (action, body, resp.text)
        assert resp.json()["error"]["message"]
    assert row_count(stack) == before


def test_bulk_refuses_what_is_not_json(http: httpx.Client) -> None:
    assert http.post("/api/workflows/bulk/retry", content=b"[]").status_code == 415
    resp = http.post(
        "/api/workflows/bulk/retry", content=b"{", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400


def test_retry_then_dead_letter_shows_forked(http: httpx.Client) -> None:
    wid = failed(http, steps=1, fail_after_steps=0)
    assert http.post(f"/api/workflows/{wid}/retry").status_code == 202
    wait_for(
        lambda: any(
            w["workflow_id"] == wid for w in http.get("/api/dead-letter?forked=true").json()
        ),
        timeout=10,
        what="the retried workflow listed as forked",
    )
    assert all(w["workflow_id"] != wid for w in http.get("/api/dead-letter?forked=false").json())


def test_a_thousand_ids_fit_in_one_call(stack: Stack, http: httpx.Client) -> None:
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    before = row_count(stack)
    resp = http.post("/api/workflows/bulk/cancel", json={"workflow_ids": ids, "dry_run": True})
    assert resp.status_code == 200, resp.text
    assert resp.json()["matched"] == 1000
    assert len(resp.json()["skipped"]) == 1000  # none of them exists
    too_many = http.post("/api/workflows/bulk/retry", json={"workflow_ids": [*ids, "one-more"]})
    assert too_many.status_code == 422
    assert "at most 1000" in too_many.json()["error"]["message"]
    assert row_count(stack) == before


def test_a_step_re_executed_after_a_crash_is_marked(database_url: str, tmp_path: Path) -> None:
    """kill -9 a worker in the middle of a 1 s step; a peer recovers the workflow and runs that
    step again: the steps answer shows 2 dispatches and that step (the first one finished in
    the second dispatch) with attempts 2, every other step 1."""
    fast = {
        "WORKER_HEARTBEAT_SECONDS": "0.3",
        "WORKER_DEAD_AFTER_SECONDS": "1.5",
        "WORKER_RECOVERY_SWEEP_SECONDS": "0.5",
    }
    stack = Stack(database_url, tmp_path, **fast)
    try:
        stack.start_api()
        doomed = stack.start_worker("doomed")
        with stack.client() as http:
            wf = enqueue(http, 12, step_seconds=1.0)
            wait_steps(http, wf, 1)  # the doomed worker runs it
            stack.start_worker("survivor")
            # Just after a step finished, so the next one (output `running`) is mid-way.
            now = http.get(f"/api/workflows/{wf}").json()["steps_completed"]
            wait_steps(http, wf, now + 1)
            time.sleep(0.3)
            running = http.get(f"/api/workflows/{wf}").json()["steps_completed"]
            assert running < 12, "finished before the crash; the machine is too slow for this"
            doomed.proc.kill()
            doomed.proc.wait()
            done = wait_status(http, wf, {"SUCCESS", "ERROR"}, timeout=60)
            assert done["workflow_status"] == "SUCCESS"
            body = http.get(f"/api/workflows/{wf}/steps").json()
    finally:
        stack.stop()
    assert body["dispatches"] == 2
    demo = [s for s in body["steps"] if s["name"].endswith("demo_step")]
    assert [s["output"] for s in demo] == list(range(12))
    rerun = [s for s in body["steps"] if s["reexecuted"]]
    assert len(rerun) == 1
    assert rerun[0]["attempts"] == 2
    assert rerun[0] == demo[running]  # the step the crash interrupted
    assert all(s["attempts"] == 1 for s in body["steps"] if not s["reexecuted"])
