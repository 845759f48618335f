"""The real API and a real worker process, over HTTP, on Postgres and on SQLite."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import jsonschema
import pytest
import sqlalchemy as sa

from services.common.names import WORKFLOW_QUEUE
from tests.support import Stack, enqueue, wait_for, wait_status, wait_steps


def row_count(stack: Stack) -> int:
    engine = sa.create_engine(stack.database_url.replace("postgresql://", "postgresql+psycopg://"))
    table = "dbos.workflow_status" if engine.dialect.name == "postgresql" else "workflow_status"
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def assert_matches(spec: dict[str, Any], schema_name: str, instance: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    jsonschema.validate(instance, schema)


def test_enqueued_workflow_completes_with_all_steps(
    http: httpx.Client, spec: dict[str, Any]
) -> None:
    resp = http.post("/api/workflows", json={"num_steps": 4, "step_seconds": 0.05})
    assert resp.status_code == 202
    assert_matches(spec, "EnqueueResponse", resp.json())
    workflow_id = resp.json()["workflow_id"]
    assert resp.headers["location"] == f"/api/workflows/{workflow_id}"
    done = wait_status(http, workflow_id, {"SUCCESS", "ERROR"})
    assert done["workflow_status"] == "SUCCESS"
    assert done["steps_completed"] == done["num_steps"] == 4
    assert done["started_at"] is not None
    assert done["completed_at"] is not None
    assert_matches(spec, "WorkflowDetail", done)
    listed = http.get("/api/workflows", params={"limit": 5}).json()
    assert_matches(spec, "Workflow", listed[0])
    assert any(w["workflow_id"] == workflow_id and w["steps_completed"] == 4 for w in listed)


def test_progress_is_visible_while_running(http: httpx.Client) -> None:
    workflow_id = enqueue(http, 6, step_seconds=0.4)
    seen = wait_for(
        lambda: (
            (w := http.get(f"/api/workflows/{workflow_id}").json())["workflow_status"] == "PENDING"
            and 0 < (w["steps_completed"] or 0) < 6
            and w
        ),
        timeout=30,
        interval=0.05,
        what="a partially completed workflow",
    )
    assert seen["num_steps"] == 6
    wait_status(http, workflow_id, {"SUCCESS"})


def test_idempotent_retries_create_one_workflow(stack: Stack, http: httpx.Client) -> None:
    key = f"order-{uuid.uuid4()}"
    before = row_count(stack)
    body = {"num_steps": 2, "step_seconds": 0.01}
    first = http.post("/api/workflows", json=body, headers={"Idempotency-Key": key})
    retries = [
        http.post("/api/workflows", json=body, headers={"Idempotency-Key": key}) for _ in range(3)
    ]
    assert first.status_code == 202
    assert {r.status_code for r in retries} == {202}
    assert {r.json()["workflow_id"] for r in retries} == {first.json()["workflow_id"]}
    assert all(r.headers.get("idempotent-replayed") == "true" for r in retries)
    assert row_count(stack) == before + 1
    # The same key with a different body is a client bug, not a retry.
    clash = http.post("/api/workflows", json={"num_steps": 3}, headers={"Idempotency-Key": key})
    assert clash.status_code == 409
    assert "Idempotency-Key" in clash.json()["error"]["message"]
    assert row_count(stack) == before + 1


def concurrent_posts(
    stack: Stack, path: str, bodies: list[Any], headers: dict[str, str]
) -> list[httpx.Response]:
    """POST each body on its own connection, all released at once by a barrier."""
    barrier = threading.Barrier(len(bodies))

    def send(body: Any) -> httpx.Response:
        with stack.client() as client:
            client.get("/healthz")  # connect first, so the barrier releases only the POSTs
            barrier.wait(timeout=30)
            return client.post(path, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_concurrent_reuse_of_a_key_never_accepts_a_different_body(
    stack: Stack, http: httpx.Client
) -> None:
    """20 requests at once with one Idempotency-Key and two bodies (10 each): only the body that
    was stored is accepted (202, answered from the stored workflow), every other one is a 409,
    whichever request wins the insert. Three trials, each with its own key."""
    bodies = [{"num_steps": 2, "step_seconds": 0.01}, {"num_steps": 3, "step_seconds": 0.01}]
    for _ in range(3):
        key = f"race-{uuid.uuid4()}"
        before = row_count(stack)
        responses = concurrent_posts(
            stack, "/api/workflows", bodies * 10, headers={"Idempotency-Key": key}
        )
        results = list(zip(bodies * 10, responses, strict=True))
        assert {r.status_code for _, r in results} <= {202, 409}, [r.text for _, r in results]
        accepted = [(b, r) for b, r in results if r.status_code == 202]
        refused = [(b, r) for b, r in results if r.status_code == 409]
        assert accepted
        (workflow_id,) = {r.json()["workflow_id"] for _, r in accepted}
        stored = http.get(f"/api/workflows/{workflow_id}").json()["num_steps"]
        assert {b["num_steps"] for b, _ in accepted} == {stored}, "a different body got a 202"
        assert {r.json()["num_steps"] for _, r in accepted} == {stored}
        assert {b["num_steps"] for b, _ in refused} == {5 - stored}
        assert (len(accepted), len(refused)) == (10, 10)
        assert row_count(stack) == before + 1


def test_cancel_then_resume_finishes_the_workflow(http: httpx.Client) -> None:
    workflow_id = enqueue(http, 8, step_seconds=0.3)
    wait_steps(http, workflow_id, 1)
    resp = http.post(f"/api/workflows/{workflow_id}/cancel")
    assert resp.status_code == 202, resp.text
    cancelled = wait_status(http, workflow_id, {"CANCELLED"})
    stopped_at = cancelled["steps_completed"]
    assert stopped_at < 8
    # Cancelled work stays cancelled: no step runs afterwards.
    time.sleep(1)
    assert http.get(f"/api/workflows/{workflow_id}").json()["steps_completed"] <= stopped_at + 1

    resp = http.post(f"/api/workflows/{workflow_id}/resume")
    assert resp.status_code == 202, resp.text
    done = wait_status(http, workflow_id, {"SUCCESS"})
    assert done["steps_completed"] == 8
    assert done["queue_name"] == WORKFLOW_QUEUE  # back on its own queue, not DBOS's internal one

    # Finished work can be neither cancelled nor resumed.
    for action in ("cancel", "resume"):
        resp = http.post(f"/api/workflows/{workflow_id}/{action}")
        assert resp.status_code == 409
        assert "SUCCESS" in resp.json()["error"]["message"]


def test_pagination_visits_every_workflow_exactly_once(http: httpx.Client) -> None:
    created = {enqueue(http, 1, step_seconds=0) for _ in range(23)}
    seen: list[str] = []
    url: str | None = "/api/workflows?limit=7"
    pages = 0
    while url is not None:
        resp = http.get(url)
        assert resp.status_code == 200
        page = resp.json()
        assert len(page) <= 7
        seen.extend(w["workflow_id"] for w in page)
        created_at = [w["created_at"] for w in page]
        assert created_at == sorted(created_at, reverse=True)  # newest first
        url = resp.links.get("next", {}).get("url")
        pages += 1
        assert pages < 1000
    assert len(seen) == len(set(seen)), "a workflow appeared on two pages"
    assert created <= set(seen)
    assert pages >= 4


def test_status_filter(http: httpx.Client) -> None:
    workflow_id = enqueue(http, 1, step_seconds=0)
    wait_status(http, workflow_id, {"SUCCESS"})
    succeeded = http.get("/api/workflows", params={"status": "SUCCESS", "limit": 500}).json()
    assert succeeded
    assert all(w["workflow_status"] == "SUCCESS" for w in succeeded)
    assert workflow_id in {w["workflow_id"] for w in succeeded}
    none = http.get("/api/workflows", params={"status": "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}).json()
    assert none == []


def test_queue_summary_and_metrics(http: httpx.Client, spec: dict[str, Any]) -> None:
    queues = http.get("/api/queues").json()
    assert [q["queue_name"] for q in queues] == [WORKFLOW_QUEUE]
    assert_matches(spec, "Queue", queues[0])
    assert queues[0]["registered"] is True
    assert queues[0]["worker_concurrency"] == 10
    metrics = http.get("/metrics").text
    assert f'queue_worker_queue_depth{{queue="{WORKFLOW_QUEUE}"}}' in metrics
    assert f'queue_worker_queue_in_flight{{queue="{WORKFLOW_QUEUE}"}}' in metrics


def test_get_unknown_workflow_is_404(http: httpx.Client) -> None:
    for path in ("/api/workflows/nope", "/api/workflows/nope/cancel", "/api/workflows/nope/resume"):
        resp = http.get(path) if path.count("/") == 3 else http.post(path)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "not_found"


def raw(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": content_type}}


BAD_REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("missing num_steps", {"json": {}}, 422),
    ("zero steps", {"json": {"num_steps": 0}}, 422),
    ("too many steps", {"json": {"num_steps": 51}}, 422),
    ("string steps", {"json": {"num_steps": "5"}}, 422),
    ("float steps", {"json": {"num_steps": 1.5}}, 422),
    ("unknown field", {"json": {"num_steps": 1, "extra": 1}}, 422),
    ("array body", {"json": [1]}, 422),
    ("bad priority", {"json": {"num_steps": 1, "priority": -3}}, 422),
    ("malformed json", raw(b"{num_steps: 1"), 400),
    ("invalid utf-8", raw(b'{"num_steps": "\xff"}'), 400),
    ("nested", raw(b"[" * 5000 + b"]" * 5000), 400),
    ("form body", raw(b"num_steps=1", "application/x-www-form-urlencoded"), 415),
    ("no content type", raw(b'{"num_steps": 1}', ""), 415),
    ("oversized", raw(b'{"num_steps": 1, "pad": "' + b"x" * 100_000 + b'"}'), 413),
    ("long idempotency key", {"json": {"num_steps": 1}, "headers": {"Idempotency-Key": "x" * 300}}, 400),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "kwargs", "status"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_enqueue_is_refused_and_writes_nothing(
    stack: Stack, http: httpx.Client, case: str, kwargs: dict[str, Any], status: int
) -> None:
    before = row_count(stack)
    resp = http.post("/api/workflows", **kwargs)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["message"]
    assert error["code"]
    assert row_count(stack) == before


def test_chunked_oversized_body_is_refused(stack: Stack, http: httpx.Client) -> None:
    before = row_count(stack)

    def chunks() -> Iterator[bytes]:
        yield b'{"num_steps": 1, "pad": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    resp = http.post(
        "/api/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert row_count(stack) == before


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=100000", "limit=-5", "status=NOPE", "cursor=%00%01", "bogus=1",
     "status=SUCCESS'%20OR%20'1'='1"],
)  # fmt: skip
def test_bad_list_queries_are_400(http: httpx.Client, query: str) -> None:
    resp = http.get(f"/api/workflows?{query}")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"]


def test_sql_looking_ids_are_just_unknown(http: httpx.Client) -> None:
    for bad in ("' OR '1'='1", "1; DROP TABLE workflow_status", "%27--"):
        resp = http.get(f"/api/workflows/{bad}")
        assert resp.status_code == 404
    assert http.get("/api/queues").status_code == 200


def test_unknown_routes_and_methods_are_json_errors(http: httpx.Client) -> None:
    resp = http.get("/api/nothing-here")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    resp = http.delete("/api/workflows")
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "method_not_allowed"
    resp = http.get("/static/../../pyproject.toml")
    assert resp.status_code == 404


def test_health_endpoints(stack: Stack, http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json()["status"] == "ready"
    worker = httpx.get(f"http://127.0.0.1:{stack.worker_ports[0]}/readyz")
    assert worker.status_code == 200
    metrics = httpx.get(f"http://127.0.0.1:{stack.worker_ports[0]}/metrics").text
    assert "queue_worker_worker_in_flight" in metrics


def test_openapi_describes_every_route(stack: Stack, spec: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(spec["components"]["schemas"]["Workflow"])
    described = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    expected = {
        ("/api/workflows", "POST"),
        ("/api/workflows", "GET"),
        ("/api/workflows/batch", "POST"),
        ("/api/workflows/demo", "POST"),
        ("/api/workflows/fail-after", "POST"),
        ("/api/workflow-types", "GET"),
        ("/api/workflows/{workflow_id}", "GET"),
        ("/api/workflows/{workflow_id}/cancel", "POST"),
        ("/api/workflows/{workflow_id}/resume", "POST"),
        ("/api/workflows/{workflow_id}/steps", "GET"),
        ("/api/workflows/{workflow_id}/fork", "POST"),
        ("/api/workflows/{workflow_id}/retry", "POST"),
        ("/api/workflows/bulk/retry", "POST"),
        ("/api/workflows/bulk/cancel", "POST"),
        ("/api/dead-letter", "GET"),
        ("/api/workflows/events", "GET"),
        ("/api/workflows/{workflow_id}/events", "GET"),
        ("/api/queues", "GET"),
        ("/api/schedules", "POST"),
        ("/api/schedules", "GET"),
        ("/api/schedules/{name}", "GET"),
        ("/api/schedules/{name}", "DELETE"),
        ("/api/schedules/{name}/pause", "POST"),
        ("/api/schedules/{name}/resume", "POST"),
        ("/api/schedules/{name}/trigger", "POST"),
        ("/api/schedules/{name}/backfill", "POST"),
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
        ("/", "GET"),
        ("/openapi.json", "GET"),
    }
    assert described == expected
    from services.api.app import create_app
    from services.common.settings import load_settings

    app = create_app(load_settings({"DBOS_SYSTEM_DATABASE_URL": stack.database_url}))
    served = {
        (getattr(route, "path", ""), method)
        for route in app.routes
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }
    assert served == expected
    json.dumps(spec)  # serialisable as served


def test_page_is_served(http: httpx.Client) -> None:
    resp = http.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<html" in resp.text.lower()


# --- the workflow catalogue, batches, delay and timeout (issue 12) ---------------------------


def test_workflow_types_are_listed_with_their_schemas(http: httpx.Client) -> None:
    types = {t["name"]: t for t in http.get("/api/workflow-types").json()}
    assert set(types) == {"demo", "fail-after"}
    assert types["demo"]["workflow_name"] == "workflow"
    assert types["demo"]["input_schema"]["properties"]["num_steps"]["maximum"] == 50
    assert types["fail-after"]["queue"] == WORKFLOW_QUEUE
    assert "fail_after_steps" in types["fail-after"]["input_schema"]["required"]


def test_typed_enqueue_runs_each_declared_type(http: httpx.Client, spec: dict[str, Any]) -> None:
    resp = http.post("/api/workflows/demo", json={"num_steps": 2, "step_seconds": 0.01})
    assert resp.status_code == 202, resp.text
    assert_matches(spec, "EnqueueResponse", resp.json())
    assert wait_status(http, resp.json()["workflow_id"], {"SUCCESS"})["steps_completed"] == 2
    resp = http.post(
        "/api/workflows/fail-after",
        json={"num_steps": 4, "fail_after_steps": 2, "step_seconds": 0.01},
    )
    assert resp.status_code == 202, resp.text
    failed = wait_status(http, resp.json()["workflow_id"], {"ERROR", "SUCCESS"})
    assert failed["workflow_status"] == "ERROR"
    assert failed["workflow_name"] == "fail-after"
    assert failed["steps_completed"] == 2
    assert failed["completed_at"] is not None
    # dbos 3.4 keeps the error in workflow_output, not workflow_status (it read null here).
    assert failed["error"].startswith("IntendedFailure: "), failed["error"]


# Before the batch tests: their backlog (a thousand workflows) would hold these up.
def started(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["started_at"])


def test_run_at_holds_a_workflow_until_then(http: httpx.Client) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    resp = http.post("/api/workflows", json={"num_steps": 1, "step_seconds": 0, "run_at": soon})
    assert resp.status_code == 202, resp.text
    assert resp.json()["workflow_status"] == "DELAYED"
    done = wait_status(http, resp.json()["workflow_id"], {"SUCCESS"})
    # Not before run_at, to the second: SQLite's timestamps have one-second resolution.
    assert started(done) >= datetime.fromisoformat(soon).replace(microsecond=0)
    # Typed, with an unencoded "+" offset in the query (read as a space, taken back as "+").
    later = (datetime.now(UTC) + timedelta(seconds=2)).astimezone(timezone(timedelta(hours=2)))
    resp = http.post(
        f"/api/workflows/demo?run_at={later.isoformat()}", json={"num_steps": 1, "step_seconds": 0}
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["workflow_status"] == "DELAYED"
    done = wait_status(http, resp.json()["workflow_id"], {"SUCCESS"})
    assert started(done) >= later.replace(microsecond=0)
    # Batch items, and a time in the past runs at once.
    items = [
        {"input": {"num_steps": 1, "step_seconds": 0}, "run_at": "2020-01-01T00:00:00Z"},
        {"input": {"num_steps": 1, "step_seconds": 0}, "run_at": soon},
    ]
    resp = http.post("/api/workflows/batch", json={"workflows": items})
    assert resp.status_code == 202, resp.text
    for workflow_id in resp.json()["workflow_ids"]:
        assert wait_status(http, workflow_id, {"SUCCESS"})["steps_completed"] == 1


def test_a_retry_with_run_at_is_a_replay(http: httpx.Client) -> None:
    body = {"num_steps": 1, "run_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    headers = {"Idempotency-Key": f"run-at-{uuid.uuid4()}"}
    first = http.post("/api/workflows", json=body, headers=headers)
    time.sleep(1.1)  # the delay left until run_at has changed; the request has not
    second = http.post("/api/workflows", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["workflow_id"] == first.json()["workflow_id"]
    http.post(f"/api/workflows/{first.json()['workflow_id']}/cancel")


def test_batch_is_enqueued_in_item_order_and_replays(stack: Stack, http: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    items = [
        {"input": {"num_steps": 1, "step_seconds": 0}, "idempotency_key": f"{tag}-0"},
        {"type": "fail-after", "input": {"num_steps": 1, "fail_after_steps": 0}},
        {"type": "demo", "input": {"num_steps": 2, "step_seconds": 0}, "priority": 3,
         "idempotency_key": f"{tag}-2"},
    ]  # fmt: skip
    before = row_count(stack)
    resp = http.post("/api/workflows/batch", json={"workflows": items})
    assert resp.status_code == 202, resp.text
    ids = resp.json()["workflow_ids"]
    assert len(ids) == 3
    assert row_count(stack) == before + 3
    names = [wait_status(http, i, {"SUCCESS", "ERROR"})["workflow_name"] for i in ids]
    assert names == ["workflow", "fail-after", "workflow"]
    # Replaying the keyed items gives the same ids and writes nothing.
    again = http.post("/api/workflows/batch", json={"workflows": [items[2], items[0]]})
    assert again.status_code == 202, again.text
    assert again.json()["workflow_ids"] == [ids[2], ids[0]]
    assert row_count(stack) == before + 3
    # A key of this batch used for a different item: 409 naming it, and nothing written.
    clash = {"input": {"num_steps": 9}, "idempotency_key": f"{tag}-0"}
    fresh = {"input": {"num_steps": 1}, "idempotency_key": f"{tag}-new"}
    resp = http.post("/api/workflows/batch", json={"workflows": [fresh, clash]})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["index"] == 1
    assert resp.json()["error"]["field"] == "workflows[1].idempotency_key"
    assert row_count(stack) == before + 3


def test_a_batch_of_a_thousand_is_one_write(stack: Stack, http: httpx.Client) -> None:
    before = row_count(stack)
    items = [{"input": {"num_steps": 1, "step_seconds": 0}} for _ in range(1000)]
    resp = http.post("/api/workflows/batch", json={"workflows": items})
    assert resp.status_code == 202, resp.text
    assert len(set(resp.json()["workflow_ids"])) == 1000
    assert row_count(stack) == before + 1000


def test_concurrent_batches_with_one_key_never_accept_a_different_item(
    stack: Stack, http: httpx.Client
) -> None:
    key = f"batch-race-{uuid.uuid4()}"
    bodies: list[dict[str, Any]] = [
        {"workflows": [{"input": {"num_steps": n}, "idempotency_key": key}]} for n in (2, 3)
    ]
    before = row_count(stack)
    responses = concurrent_posts(stack, "/api/workflows/batch", bodies * 5, headers={})
    assert {r.status_code for r in responses} <= {202, 409}
    accepted = [b for b, r in zip(bodies * 5, responses, strict=True) if r.status_code == 202]
    (workflow_id,) = {r.json()["workflow_ids"][0] for r in responses if r.status_code == 202}
    stored = http.get(f"/api/workflows/{workflow_id}").json()["num_steps"]
    assert {b["workflows"][0]["input"]["num_steps"] for b in accepted} == {stored}
    assert len(accepted) == 5
    assert row_count(stack) == before + 1


def test_delay_and_timeout_reach_dbos(http: httpx.Client) -> None:
    resp = http.post("/api/workflows", json={"num_steps": 1, "step_seconds": 0, "delay_seconds": 2})
    assert resp.status_code == 202, resp.text
    workflow_id = resp.json()["workflow_id"]
    assert http.get(f"/api/workflows/{workflow_id}").json()["workflow_status"] == "DELAYED"
    done = wait_status(http, workflow_id, {"SUCCESS"})
    created = done["created_at"]
    assert done["started_at"] is not None
    assert created is not None
    waited = datetime.fromisoformat(done["started_at"]) - datetime.fromisoformat(created)
    assert waited.total_seconds() >= 1.5
    resp = http.post(
        "/api/workflows/demo?timeout_seconds=0.5", json={"num_steps": 50, "step_seconds": 0.2}
    )
    assert resp.status_code == 202, resp.text
    timed_out = wait_status(http, resp.json()["workflow_id"], {"CANCELLED", "SUCCESS", "ERROR"})
    assert timed_out["workflow_status"] == "CANCELLED"
    assert timed_out["steps_completed"] < 50


def test_partition_key_reaches_dbos_on_every_enqueue_path(http: httpx.Client) -> None:
    seed = http.post("/api/workflows", json={"num_steps": 1, "partition_key": "acme"})
    typed = http.post("/api/workflows/demo?partition_key=42", json={"num_steps": 1})
    plain = http.post("/api/workflows/demo", json={"num_steps": 1})
    batch = http.post(
        "/api/workflows/batch",
        json={
            "workflows": [
                {"input": {"num_steps": 1}, "partition_key": "tenant/eu-1"},
                {"input": {"num_steps": 1}},
            ]
        },
    )
    for resp in (seed, typed, plain, batch):
        assert resp.status_code == 202, resp.text
    ids = [r.json()["workflow_id"] for r in (seed, typed, plain)] + batch.json()["workflow_ids"]
    stored = [http.get(f"/api/workflows/{w}").json()["partition_key"] for w in ids]
    # "42" stays a string; no key means the "default" tenant.
    assert stored == ["acme", "42", "default", "tenant/eu-1", "default"]
    assert [r.json()["partition_key"] for r in (seed, typed, plain)] == stored[:3]
    # The key is part of the request: reusing an Idempotency-Key for another tenant is a conflict.
    key = {"Idempotency-Key": f"fair-{uuid.uuid4()}"}
    first = http.post("/api/workflows", json={"num_steps": 1, "partition_key": "a"}, headers=key)
    assert first.status_code == 202, first.text
    other = http.post("/api/workflows", json={"num_steps": 1, "partition_key": "b"}, headers=key)
    assert other.status_code == 409, other.text


NEW_BAD_INPUT: list[tuple[str, str, Any, int, str]] = [
    ("typed: missing field", "/api/workflows/fail-after", {"num_steps": 2}, 422, "fail_after_steps"),  # noqa: E501
    ("typed: out of range", "/api/workflows/demo", {"num_steps": 51}, 422, "num_steps"),
    ("typed: unknown field", "/api/workflows/demo", {"num_steps": 1, "x": 1}, 422, "x"),
    ("typed: wrong type", "/api/workflows/fail-after", {"num_steps": 2, "fail_after_steps": "1"}, 422, "fail_after_steps"),  # noqa: E501
    ("typed: bad query", "/api/workflows/demo?delay_seconds=-1", {"num_steps": 1}, 422, "delay_seconds"),  # noqa: E501
    ("typed: unknown query", "/api/workflows/demo?later=1", {"num_steps": 1}, 400, "later"),
    ("seed: bad delay", "/api/workflows", {"num_steps": 1, "delay_seconds": "x"}, 422, "delay_seconds"),  # noqa: E501
    ("seed: bad timeout", "/api/workflows", {"num_steps": 1, "timeout_seconds": 0}, 422, "timeout_seconds"),  # noqa: E501
    ("batch: empty", "/api/workflows/batch", {"workflows": []}, 422, "workflows"),
    ("batch: too many", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}}] * 1001}, 422, "workflows"),  # noqa: E501
    ("batch: unknown type", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}}, {"type": "nope", "input": {}}]}, 422, "workflows[1].type"),  # noqa: E501
    ("batch: bad input", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}}, {"input": {"num_steps": 1}}, {"input": {"num_steps": 0}}]}, 422, "workflows[2].input.num_steps"),  # noqa: E501
    ("batch: missing input", "/api/workflows/batch", {"workflows": [{"type": "demo"}]}, 422, "workflows[0].input"),  # noqa: E501
    ("batch: unknown item field", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}, "when": 1}]}, 422, "workflows[0].when"),  # noqa: E501
    ("batch: bad key", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}, "idempotency_key": ""}]}, 422, "workflows[0].idempotency_key"),  # noqa: E501
    ("batch: bad option", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}, "priority": 0}]}, 422, "workflows[0].priority"),  # noqa: E501
    ("run_at and delay", "/api/workflows", {"num_steps": 1, "delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"}, 422, "run_at"),  # noqa: E501
    ("run_at too far", "/api/workflows", {"num_steps": 1, "run_at": "2999-01-01T00:00:00Z"}, 422, "run_at"),  # noqa: E501
    ("run_at no offset", "/api/workflows", {"num_steps": 1, "run_at": "2030-01-01T00:00:00"}, 422, "run_at"),  # noqa: E501
    ("run_at not a date", "/api/workflows", {"num_steps": 1, "run_at": "2030-02-30T00:00:00Z"}, 422, "run_at"),  # noqa: E501
    ("run_at a number", "/api/workflows", {"num_steps": 1, "run_at": 1700000000}, 422, "run_at"),
    ("typed: run_at too far", "/api/workflows/demo?run_at=2999-01-01T00:00:00Z", {"num_steps": 1}, 422, "run_at"),  # noqa: E501
    ("batch: bad run_at", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}, "run_at": "soon"}]}, 422, "workflows[0].run_at"),  # noqa: E501
    ("batch: item not object", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}}, 7]}, 422, "workflows[1]"),  # noqa: E501
    ("seed: partition key with a space", "/api/workflows", {"num_steps": 1, "partition_key": "acme corp"}, 422, "partition_key"),  # noqa: E501
    ("seed: partition key too long", "/api/workflows", {"num_steps": 1, "partition_key": "k" * 129}, 422, "partition_key"),  # noqa: E501
    ("seed: partition key not a string", "/api/workflows", {"num_steps": 1, "partition_key": 7}, 422, "partition_key"),  # noqa: E501
    ("typed: empty partition key", "/api/workflows/demo?partition_key=", {"num_steps": 1}, 422, "partition_key"),  # noqa: E501
    ("batch: bad partition key", "/api/workflows/batch", {"workflows": [{"input": {"num_steps": 1}}, {"input": {"num_steps": 1}, "partition_key": "-x"}]}, 422, "workflows[1].partition_key"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "path", "body", "status", "field"), NEW_BAD_INPUT, ids=[c[0] for c in NEW_BAD_INPUT]
)
def test_new_bad_input_names_the_field_and_writes_nothing(
    stack: Stack, http: httpx.Client, case: str, path: str, body: Any, status: int, field: str
) -> None:
    before = row_count(stack)
    resp = http.post(path, json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["field"] == field
    assert field in error["message"]
    if path.endswith("/batch") and "[" in field:
        assert error["index"] == int(field.split("[")[1].split("]")[0])
    assert row_count(stack) == before
