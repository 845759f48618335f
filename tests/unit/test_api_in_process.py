"""The API's routes, errors, auth and body limits, in process (tests/unit/api_client.py): each
test costs milliseconds, so a change to the API gets feedback from `make test-fast` at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.api.app import MAX_BODY_BYTES
from services.common.names import WORKFLOW_QUEUE
from tests.unit.api_client import ApiClient, api_client, workflow_rows

TOKEN = "an-api-token-of-twenty-chars"


@pytest.fixture
def api(sqlite_template: Path, tmp_path: Path) -> Iterator[ApiClient]:
    with api_client(sqlite_template, tmp_path, MAX_NUM_STEPS="50") as client:
        yield client


def _enqueue(api: ApiClient, **body: Any) -> str:
    resp = api.post("/api/workflows", json={"num_steps": 3, **body})
    assert resp.status_code == 202, resp.text
    assert resp.headers["location"] == f"/api/workflows/{resp.json()['workflow_id']}"
    return str(resp.json()["workflow_id"])


def test_enqueue_get_list_and_queue_summary(api: ApiClient) -> None:
    ids = [_enqueue(api, priority=p) for p in (5, 1)]
    one = api.get(f"/api/workflows/{ids[0]}").json()
    assert (one["workflow_status"], one["num_steps"], one["steps_completed"]) == ("ENQUEUED", 3, 0)
    assert one["priority"] == 5
    # One page of one, then the next link (SQLite orders within a second by id, not by time).
    first = api.get("/api/workflows?limit=1")
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    second = api.get(link[1 : link.index(">")])
    assert {w["workflow_id"] for w in [*first.json(), *second.json()]} == set(ids)
    (queue,) = [q for q in api.get("/api/queues").json() if q["queue_name"] == WORKFLOW_QUEUE]
    assert queue["enqueued"] == 2


def test_cancel_then_resume_and_what_cannot_be(api: ApiClient) -> None:
    workflow_id = _enqueue(api)
    assert api.post(f"/api/workflows/{workflow_id}/resume").status_code == 409  # not cancelled
    assert api.post(f"/api/workflows/{workflow_id}/cancel").status_code == 202
    assert api.get(f"/api/workflows/{workflow_id}").json()["workflow_status"] == "CANCELLED"
    assert api.post(f"/api/workflows/{workflow_id}/resume").status_code == 202
    assert api.get(f"/api/workflows/{workflow_id}").json()["workflow_status"] == "ENQUEUED"


def test_idempotency_key_replays_and_refuses_another_body(api: ApiClient) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = api.post("/api/workflows", json={"num_steps": 2}, headers=headers)
    again = api.post("/api/workflows", json={"num_steps": 2}, headers=headers)
    assert again.json()["workflow_id"] == first.json()["workflow_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = api.post("/api/workflows", json={"num_steps": 3}, headers=headers)
    assert other.status_code == 409
    assert workflow_rows(api) == 1


def test_typed_and_batch_enqueue(api: ApiClient) -> None:
    types = {t["name"] for t in api.get("/api/workflow-types").json()}
    assert {"demo", "fail-after"} <= types
    fail_after = {"num_steps": 2, "fail_after_steps": 1}
    typed = api.post("/api/workflows/fail-after?priority=2", json=fail_after)
    assert typed.status_code == 202, typed.text
    batch = api.post("/api/workflows/batch", json={"workflows": [{"input": {"num_steps": 1}}] * 3})
    assert batch.status_code == 202, batch.text
    assert len(batch.json()["workflow_ids"]) == 3
    items = [{"input": {"num_steps": 1}}, {"input": {"num_steps": 0}}]
    bad = api.post("/api/workflows/batch", json={"workflows": items})
    assert bad.status_code == 422
    assert (bad.json()["error"]["index"], bad.json()["error"]["field"]) == (
        1, "workflows[1].input.num_steps"
    )  # fmt: skip
    assert workflow_rows(api) == 4  # the bad batch wrote nothing


REFUSED: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("missing num_steps", {"json": {}}, 422, "num_steps"),
    ("too many steps", {"json": {"num_steps": 51}}, 422, "num_steps"),
    ("string steps", {"json": {"num_steps": "5"}}, 422, "num_steps"),
    ("unknown field", {"json": {"num_steps": 1, "extra": 1}}, 422, "extra"),
    ("bad priority", {"json": {"num_steps": 1, "priority": -3}}, 422, "priority"),
    ("malformed json", {"content": b"{num_steps: 1", "headers": {"content-type": "application/json"}}, 400, None),  # noqa: E501
    ("form body", {"content": b"num_steps=1", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415, None),  # noqa: E501
    ("oversized", {"content": b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}', "headers": {"content-type": "application/json"}}, 413, None),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "field"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_bad_enqueue_is_a_4xx_naming_the_field_and_writes_nothing(
    api: ApiClient, case: str, kwargs: dict[str, Any], status: int, field: str | None
) -> None:
    resp = api.post("/api/workflows", **kwargs)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"]
    assert error["message"]
    if field is not None:
        assert error["field"] == field
    assert workflow_rows(api) == 0


def test_a_chunked_body_over_the_limit_is_refused_while_streaming(api: ApiClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"num_steps": 1, "pad": "'
        yield from (b"x" * 1024 for _ in range(MAX_BODY_BYTES // 1024 + 1))
        yield b'"}'

    resp = api.post(
        "/api/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert workflow_rows(api) == 0


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "status=NOPE", "cursor=%00", "bogus=1"])
def test_bad_list_queries_are_400(api: ApiClient, query: str) -> None:
    resp = api.get(f"/api/workflows?{query}")
    assert resp.status_code == 400
    assert resp.json()["error"]["message"]


def test_unknown_things_are_json_404_and_405(api: ApiClient) -> None:
    for path in ("/api/workflows/nope", "/api/nothing-here"):
        assert api.get(path).json()["error"]["code"] == "not_found"
    assert api.post("/api/workflows/nope/cancel").status_code == 404
    resp = api.delete("/api/workflows")
    assert (resp.status_code, resp.json()["error"]["code"]) == (405, "method_not_allowed")


def test_open_endpoints(api: ApiClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json()["status"] == "ready"
    assert "queue_worker_queue_depth" in api.get("/metrics").text
    assert "/api/workflows" in api.get("/openapi.json").json()["paths"]
    assert api.get("/").headers["content-type"].startswith("text/html")


def test_bearer_tokens_guard_only_the_api(sqlite_template: Path, tmp_path: Path) -> None:
    with api_client(sqlite_template, tmp_path, API_TOKENS=TOKEN) as api:
        for headers in ({}, {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": TOKEN}):
            resp = api.post("/api/workflows", json={"num_steps": 1}, headers=headers)
            assert resp.status_code == 401
            assert resp.json()["error"]["code"] == "unauthorized"
            assert resp.headers["www-authenticate"].startswith("Bearer")
        assert workflow_rows(api) == 0
        ok = api.get("/api/workflows", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        for open_path in ("/healthz", "/readyz", "/metrics", "/", "/openapi.json"):
            assert api.get(open_path).status_code == 200, open_path
