"""The operations routes' input checks (services/api/ops_validation.py) and the retry chain's
naming (services/common/failures_sql.py): refusals name the field."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import QueryParams

from services.api.errors import ApiError
from services.api.ops_validation import (
    MAX_BULK,
    parse_bulk,
    parse_dead_letter_query,
    parse_start_step,
)
from services.common.failures_sql import (
    CANCELLABLE_STATUSES,
    DEAD_STATUSES,
    RETRYABLE_STATUSES,
    retry_ids,
    retry_root,
)


def test_dead_letter_query_defaults_and_filters() -> None:
    q = parse_dead_letter_query(QueryParams(""))
    assert q.filter.statuses == DEAD_STATUSES
    assert (q.limit, q.after, q.filter.forked) == (50, None, None)
    q = parse_dead_letter_query(
        QueryParams(
            "status=error&name=a,b&queue=q&error=Boom&created_after=2026-01-01T00:00:00Z"
            "&created_before=2026-01-02&forked=false&limit=5"
        )
    )
    f = q.filter
    assert (f.statuses, f.names, f.queues, f.error_contains) == (
        ("ERROR",),
        ["a", "b"],
        ["q"],
        "Boom",
    )
    assert f.created_after_ms == 1767225600000
    assert f.created_before_ms == 1767312000000  # a naive date-time is UTC
    assert (f.forked, q.limit) == (False, 5)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=SUCCESS", "status"),
        ("created_after=tomorrow", "created_after"),
        ("error=" + "x" * 201, "error"),
        ("forked=1", "forked"),
        ("limit=0", "limit"),
        ("error=a&error=b", "error"),
    ],
)
def test_bad_dead_letter_queries_name_the_field(query: str, field: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_dead_letter_query(QueryParams(query))
    assert err.value.status == 400
    assert err.value.field == field


def test_bulk_body() -> None:
    req = parse_bulk({"workflow_ids": ["a", "b", "a"]}, RETRYABLE_STATUSES, DEAD_STATUSES)
    assert (req.workflow_ids, req.filter, req.dry_run, req.limit) == (
        ["a", "b"],
        None,
        False,
        MAX_BULK,
    )
    req = parse_bulk(
        {"filter": {"status": ["DELAYED"]}, "dry_run": True, "limit": 2.0},
        CANCELLABLE_STATUSES,
        CANCELLABLE_STATUSES,
    )
    assert req.filter is not None
    assert (req.filter.statuses, req.dry_run, req.limit) == (("DELAYED",), True, 2)
    retry = parse_bulk({"filter": {}}, RETRYABLE_STATUSES, DEAD_STATUSES, default_forked=False)
    assert retry.filter is not None
    assert (retry.filter.statuses, retry.filter.forked) == (DEAD_STATUSES, False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workflow_ids": ["x"] * (MAX_BULK + 1)}, "workflow_ids"),
        ({"workflow_ids": ["ok", ""]}, "workflow_ids[1]"),
        ({"workflow_ids": ["a\x00"]}, "workflow_ids[0]"),
        ({"filter": {"status": ["PENDING"]}}, "filter.status"),
        ({"filter": {"name": "x" * 201}}, "filter.name"),
        ({"filter": {"queue": None}}, "filter.queue"),
        ({"filter": {"queue": [""]}}, "filter.queue"),
        ({"filter": {"queue": "q1,q2"}}, "filter.queue"),
        ({"filter": {"forked": "true"}}, "filter.forked"),
        ({"filter": {}, "limit": 1.5}, "limit"),
    ],
)
def test_bad_bulk_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_bulk(body, RETRYABLE_STATUSES, DEAD_STATUSES)
    assert err.value.status == 422
    assert err.value.field == field


def test_start_step() -> None:
    assert parse_start_step({"start_step": 3}) == 3
    assert parse_start_step({"start_step": 3.0}) == 3
    for body in ({}, {"start_step": 0}, {"start_step": 2.5}, {"start_step": False}, {"x": 1}):
        with pytest.raises(ApiError):
            parse_start_step(body)


def test_retry_chain_names() -> None:
    assert retry_root("wf", None) == "wf"
    assert retry_root("wf-retry-3", "wf-retry-2") == "wf"
    assert retry_root("wf-retry-x", "wf") == "wf-retry-x"  # not a chain name
    assert retry_root("wf-retry-3", None) == "wf-retry-3"  # named so, but never forked
    assert retry_ids("wf")[:2] == ["wf-retry-1", "wf-retry-2"]
