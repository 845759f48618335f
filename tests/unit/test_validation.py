"""Request validation, without a server: every bad input maps to a 4xx ApiError with a message."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import QueryParams

from services.api.errors import ApiError
from services.api.validation import (
    decode_cursor,
    encode_cursor,
    idempotent_workflow_id,
    parse_enqueue,
    parse_idempotency_key,
    parse_json_object,
    parse_list_query,
)
from services.common.workflow_types import catalogue


def enqueue(body: dict[str, Any]) -> Any:
    return parse_enqueue(body, catalogue(max_num_steps=100, default_step_seconds=1.0))


def test_valid_enqueue_with_defaults_and_options() -> None:
    req = enqueue({"num_steps": 10})
    assert (req.num_steps, req.input["step_seconds"], req.priority) == (10, 1.0, None)
    req = enqueue({"num_steps": 100, "step_seconds": 0, "priority": 7})
    assert (req.num_steps, req.input["step_seconds"], req.priority) == (100, 0, 7)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "num_steps is required"),
        ({"num_steps": 0}, "num_steps must be an integer from 1 to 100"),
        ({"num_steps": 101}, "num_steps must be an integer from 1 to 100"),
        ({"num_steps": 2.5}, "num_steps must be an integer"),
        ({"num_steps": "10"}, "num_steps must be an integer"),
        ({"num_steps": True}, "num_steps must be an integer"),
        ({"num_steps": None}, "num_steps must be an integer"),
        ({"num_steps": 1, "step_seconds": -1}, "step_seconds must be a number from 0 to 60"),
        ({"num_steps": 1, "step_seconds": 61}, "step_seconds"),
        ({"num_steps": 1, "step_seconds": "1"}, "step_seconds"),
        ({"num_steps": 1, "priority": 0}, "priority must be an integer from 1"),
        ({"num_steps": 1, "priority": 2**31}, "priority"),
        ({"num_steps": 1, "priority": 1.5}, "priority"),
        ({"num_steps": 1, "nums_steps": 2}, "nums_steps is not a known field"),
        ({"num_steps": 1, "delay_seconds": -1}, "delay_seconds must be a number from 0"),
        ({"num_steps": 1, "delay_seconds": "soon"}, "delay_seconds must be a number"),
        ({"num_steps": 1, "timeout_seconds": 0}, "timeout_seconds must be a number greater than 0"),
    ],
)
def test_bad_enqueue_bodies_are_422(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as err:
        enqueue(body)
    assert err.value.status == 422
    assert message in err.value.message
    assert err.value.field == message.split()[0]  # the error names the field


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"\xff\xfe", 400, "not valid UTF-8"),
        (b"{", 400, "not valid JSON"),
        (b"", 400, "not valid JSON"),
        (b'{"num_steps": NaN}', 400, "NaN is not allowed"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ],
)
def test_bad_json_is_refused(raw: bytes, status: int, message: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_json_object(raw)
    assert err.value.status == status
    assert message in err.value.message


def test_fingerprint_distinguishes_bodies() -> None:
    assert enqueue({"num_steps": 3}).fingerprint() == enqueue({"num_steps": 3}).fingerprint()
    assert enqueue({"num_steps": 3}).fingerprint() != enqueue({"num_steps": 4}).fingerprint()


def test_idempotency_keys() -> None:
    assert parse_idempotency_key(None) is None
    assert parse_idempotency_key("order-42") == "order-42"
    assert idempotent_workflow_id("a") == idempotent_workflow_id("a")
    assert idempotent_workflow_id("a") != idempotent_workflow_id("b")
    for bad in ("", "x" * 201, "tab\there", "caf\u00e9"):
        with pytest.raises(ApiError) as err:
            parse_idempotency_key(bad)
        assert err.value.status == 400


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor(1_700_000_000_123, "wf-1")) == (1_700_000_000_123, "wf-1")
    for bad in ("", "!!!", "bm90IGpzb24", encode_cursor(-1, "x"), "W10", "WyJhIiwxXQ"):
        with pytest.raises(ApiError) as err:
            decode_cursor(bad)
        assert err.value.status == 400


def test_list_query_defaults_and_filters() -> None:
    q = parse_list_query(QueryParams(""))
    assert (q.limit, q.statuses, q.after) == (50, None, None)
    q = parse_list_query(QueryParams("limit=5&status=pending,SUCCESS&queue=workflow-queue"))
    assert q.limit == 5
    assert q.statuses == ["PENDING", "SUCCESS"]
    assert q.queue_names == ["workflow-queue"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=abc",
        "limit=" + "9" * 5000,
        "limit=\u0661",
        "status=RUNNING",
        "status=' OR 1=1 --",
        "cursor=garbage",
        "colour=red",
        "status=" + ",".join(["SUCCESS"] * 21),
    ],
)
def test_bad_list_queries_are_400(query: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_list_query(QueryParams(query))
    assert err.value.status == 400


def test_partition_key_is_an_option_and_part_of_the_fingerprint() -> None:
    plain = enqueue({"num_steps": 1})
    keyed = enqueue({"num_steps": 1, "partition_key": "acme:eu/1"})
    assert (plain.partition_key, keyed.partition_key) == (None, "acme:eu/1")
    assert "partition_key" not in keyed.input
    assert keyed.fingerprint() != plain.fingerprint()
    assert keyed.fingerprint() != enqueue({"num_steps": 1, "partition_key": "other"}).fingerprint()


@pytest.mark.parametrize("bad", ["", " a", "a b", "-a", "k" * 129, "é", 7, True, ["a"]])
def test_bad_partition_keys_name_the_field(bad: Any) -> None:
    with pytest.raises(ApiError) as err:
        enqueue({"num_steps": 1, "partition_key": bad})
    assert (err.value.status, err.value.field) == (422, "partition_key")
