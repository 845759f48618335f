"""Validation for the operations routes (steps, dead letters, fork, retry, bulk actions): bad
input becomes a 4xx naming the field, before anything is read or written."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request

from services.api.errors import ApiError
from services.api.validation import (
    DEFAULT_LIMIT,
    MAX_FILTER_VALUE_LEN,
    MAX_FILTER_VALUES,
    MAX_LIMIT,
    _json_int,
    decode_cursor,
)
from services.common.failures_sql import DEAD_STATUSES, FailureFilter

# Most workflows one bulk call acts on: a call stays one short request, and a filter matching
# more says so (`more`) for the caller to repeat.
MAX_BULK = 1000
MAX_ERROR_FILTER_LEN = 200
FILTER_FIELDS = ("status", "name", "queue", "error", "created_after", "created_before", "forked")


def workflow_id_param(request: Request) -> str:
    workflow_id: str = request.path_params["workflow_id"]
    if "\x00" in workflow_id or len(workflow_id) > 1000:
        # No stored id holds NUL (Postgres text cannot), and none is that long.
        raise ApiError(404, f"no workflow with id {workflow_id[:100]!r}")
    return workflow_id


def unknown_params(params: QueryParams, allowed: Iterable[str]) -> None:
    unknown = sorted(set(params.keys()) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown query parameter(s): {', '.join(unknown)}")


def parse_int_param(params: QueryParams, name: str, lo: int, hi: int, *, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or not lo <= int(raw) <= hi:
        raise ApiError(400, f"{name} must be an integer from {lo} to {hi}", field=name)
    return int(raw)


def _time_ms(value: Any, name: str) -> int | None:
    """An ISO 8601 date-time (a naive one is UTC) as epoch milliseconds."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ApiError(422, f"{name} must be an ISO 8601 date-time string", field=name)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            422, f"{name} must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z", field=name
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return int(parsed.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, f"{name} is out of range", field=name) from None


def _strings(value: Any, name: str) -> list[str]:
    """A list of filter values: a JSON array of non-empty strings (the dead-letter query's
    comma-separated values arrive split into one)."""
    if value is None:
        return []
    items = value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ApiError(422, f"{name} must be a list of non-empty strings", field=name)
    if len(items) > MAX_FILTER_VALUES or any(len(v) > MAX_FILTER_VALUE_LEN for v in items):
        raise ApiError(
            422,
            f"{name}: at most {MAX_FILTER_VALUES} values, "
            f"each at most {MAX_FILTER_VALUE_LEN} characters",
            field=name,
        )
    if any("\x00" in v for v in items):
        raise ApiError(422, f"{name} must not contain NUL characters", field=name)
    return items


def _bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ApiError(422, f"{name} must be true or false", field=name)


def parse_filter(
    raw: dict[str, Any],
    allowed_statuses: tuple[str, ...],
    default_statuses: tuple[str, ...],
    *,
    prefix: str = "",
    default_forked: bool | None = None,
) -> FailureFilter:
    """A filter object (bulk body) or the query's filter fields (dead-letter list)."""
    unknown = sorted(set(raw) - set(FILTER_FIELDS))
    if unknown:
        raise ApiError(
            422, f"{prefix}{unknown[0]} is not a known filter field", field=f"{prefix}{unknown[0]}"
        )
    nulls = sorted(k for k, v in raw.items() if v is None)
    if nulls:
        raise ApiError(422, f"{prefix}{nulls[0]} must not be null", field=f"{prefix}{nulls[0]}")
    statuses = [s.upper() for s in _strings(raw.get("status"), f"{prefix}status")]
    bad = [s for s in statuses if s not in allowed_statuses]
    if bad:
        raise ApiError(
            422,
            f"{prefix}status must be among {', '.join(allowed_statuses)} (got {bad[0]!r})",
            field=f"{prefix}status",
        )
    error = raw.get("error")
    if error is not None and (
        not isinstance(error, str) or not 1 <= len(error) <= MAX_ERROR_FILTER_LEN or "\x00" in error
    ):
        raise ApiError(
            422,
            f"{prefix}error must be a string of 1 to {MAX_ERROR_FILTER_LEN} characters",
            field=f"{prefix}error",
        )
    forked = _bool(raw.get("forked"), f"{prefix}forked")
    return FailureFilter(
        statuses=tuple(statuses) or default_statuses,
        names=_strings(raw.get("name"), f"{prefix}name"),
        queues=_strings(raw.get("queue"), f"{prefix}queue"),
        error_contains=error,
        created_after_ms=_time_ms(raw.get("created_after"), f"{prefix}created_after"),
        created_before_ms=_time_ms(raw.get("created_before"), f"{prefix}created_before"),
        forked=default_forked if forked is None else forked,
    )


@dataclass(frozen=True)
class DeadLetterQuery:
    filter: FailureFilter
    limit: int
    after: tuple[int, str] | None


def parse_dead_letter_query(params: QueryParams) -> DeadLetterQuery:
    unknown_params(params, {"limit", "cursor", *FILTER_FIELDS})
    for key in set(params.keys()):
        if key not in ("status", "name", "queue") and len(params.getlist(key)) > 1:
            raise ApiError(400, f"{key} may be given once", field=key)
    raw: dict[str, Any] = {k: params.get(k) for k in FILTER_FIELDS if k in params}
    for key in ("status", "name", "queue"):
        if key in params:  # repeated or comma-separated; empty segments ("a,,b") are ignored
            raw[key] = [v for value in params.getlist(key) for v in value.split(",") if v]
            if not raw[key]:
                raise ApiError(400, f"{key} must name at least one value", field=key)
    if "forked" in raw:
        forked = raw["forked"]
        if forked not in ("true", "false"):
            raise ApiError(400, "forked must be true or false", field="forked")
        raw["forked"] = forked == "true"
    try:
        f = parse_filter(raw, DEAD_STATUSES, DEAD_STATUSES)
    except ApiError as exc:
        raise ApiError(400, exc.message, field=exc.field) from None
    cursor = params.get("cursor")
    return DeadLetterQuery(
        filter=f,
        limit=parse_int_param(params, "limit", 1, MAX_LIMIT, default=DEFAULT_LIMIT),
        after=decode_cursor(cursor) if cursor else None,
    )


@dataclass(frozen=True)
class BulkRequest:
    workflow_ids: list[str] | None
    filter: FailureFilter | None
    limit: int
    dry_run: bool


def parse_bulk(
    body: dict[str, Any],
    allowed_statuses: tuple[str, ...],
    default_statuses: tuple[str, ...],
    *,
    default_forked: bool | None = None,
) -> BulkRequest:
    unknown = sorted(set(body) - {"workflow_ids", "filter", "dry_run", "limit"})
    if unknown:
        raise ApiError(422, f"{unknown[0]} is not a known field", field=unknown[0])
    if ("workflow_ids" in body) == ("filter" in body):
        raise ApiError(
            422, "give either workflow_ids or filter, not both or neither", field="workflow_ids"
        )
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ApiError(422, "dry_run must be true or false", field="dry_run")
    limit = _json_int(body.get("limit", MAX_BULK))
    if limit is None or not 1 <= limit <= MAX_BULK:
        raise ApiError(422, f"limit must be an integer from 1 to {MAX_BULK}", field="limit")
    if "workflow_ids" in body:
        ids = body["workflow_ids"]
        if not isinstance(ids, list) or not ids:
            raise ApiError(422, "workflow_ids must be a non-empty list", field="workflow_ids")
        if len(ids) > MAX_BULK:
            raise ApiError(
                422,
                f"workflow_ids: at most {MAX_BULK} per call (got {len(ids)})",
                field="workflow_ids",
            )
        for i, value in enumerate(ids):
            if not isinstance(value, str) or not 1 <= len(value) <= 1000 or "\x00" in value:
                raise ApiError(
                    422,
                    f"workflow_ids[{i}] must be a workflow id (a non-empty string)",
                    field=f"workflow_ids[{i}]",
                )
        return BulkRequest(list(dict.fromkeys(ids)), None, limit, dry_run)
    raw = body["filter"]
    if not isinstance(raw, dict):
        raise ApiError(422, "filter must be an object", field="filter")
    f = parse_filter(
        raw, allowed_statuses, default_statuses, prefix="filter.", default_forked=default_forked
    )
    return BulkRequest(None, f, limit, dry_run)


def parse_start_step(body: dict[str, Any]) -> int:
    unknown = sorted(set(body) - {"start_step"})
    if unknown:
        raise ApiError(422, f"{unknown[0]} is not a known field", field=unknown[0])
    if body.get("start_step") is None:
        raise ApiError(422, "start_step is required", field="start_step")
    step = _json_int(body["start_step"])  # 2 and 2.0 alike, as JSON Schema counts integers
    if step is None or not 1 <= step <= 2**31 - 1:
        raise ApiError(422, "start_step must be an integer of at least 1", field="start_step")
    return step
