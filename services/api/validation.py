"""Request validation: every check that turns bad input into a 4xx with a clear message."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from services.api.errors import ApiError
from services.common.names import WORKFLOW_STATUSES

MAX_PRIORITY = 2**31 - 1  # DBOS's bound; lower values run first, omitted runs before any value
MAX_STEP_SECONDS = 60.0
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_IDEMPOTENCY_KEY = 200
MAX_FILTER_VALUES = 20
MAX_FILTER_VALUE_LEN = 200


@dataclass(frozen=True)
class EnqueueRequest:
    num_steps: int
    step_seconds: float
    priority: int | None

    def fingerprint(self) -> str:
        """Identifies the request's content, to tell a retry from a reused Idempotency-Key."""
        canonical = json.dumps(
            [self.num_steps, self.step_seconds, self.priority], separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ListQuery:
    limit: int
    statuses: list[str] | None
    names: list[str] | None
    queue_names: list[str] | None
    after: tuple[int, str] | None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(422, "request body must be a JSON object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_int(value: Any) -> int | None:
    """An integer as JSON Schema counts them: 2 and 2.0 alike (not booleans, not 2.5)."""
    if _is_int(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_enqueue(
    body: dict[str, Any], *, max_num_steps: int, default_step_seconds: float
) -> EnqueueRequest:
    unknown = sorted(set(body) - {"num_steps", "step_seconds", "priority"})
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(map(repr, unknown))}")
    if "num_steps" not in body:
        raise ApiError(422, "num_steps is required")
    num_steps = _json_int(body["num_steps"])
    if num_steps is None or not 1 <= num_steps <= max_num_steps:
        raise ApiError(422, f"num_steps must be an integer from 1 to {max_num_steps}")
    step_seconds = body.get("step_seconds", default_step_seconds)
    if (
        not isinstance(step_seconds, int | float)
        or isinstance(step_seconds, bool)
        or not math.isfinite(step_seconds)
        or not 0 <= step_seconds <= MAX_STEP_SECONDS
    ):
        raise ApiError(422, f"step_seconds must be a number from 0 to {MAX_STEP_SECONDS:g}")
    raw_priority = body.get("priority")
    priority = None if raw_priority is None else _json_int(raw_priority)
    if raw_priority is not None and (priority is None or not 1 <= priority <= MAX_PRIORITY):
        raise ApiError(422, f"priority must be an integer from 1 to {MAX_PRIORITY}")
    return EnqueueRequest(num_steps=num_steps, step_seconds=float(step_seconds), priority=priority)


def parse_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_IDEMPOTENCY_KEY or not raw.isprintable() or not raw.isascii():
        raise ApiError(
            400, f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return raw


def idempotent_workflow_id(key: str) -> str:
    """A workflow id derived from the key, so a retry maps onto the same DBOS row."""
    return "idem-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def encode_cursor(created_at_ms: int, workflow_id: str) -> str:
    raw = json.dumps([created_at_ms, workflow_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, workflow_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not _is_int(created_at) or not isinstance(workflow_id, str) or created_at < 0:
            raise ValueError
        if created_at > 2**62 or len(workflow_id) > 1000:
            raise ValueError
        # No stored id holds NUL or a lone surrogate (neither can be sent to the database).
        if "\x00" in workflow_id:
            raise ValueError
        workflow_id.encode("utf-8")
    except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError):
        raise ApiError(
            400, "cursor is not valid; use the Link header of the previous page"
        ) from None
    return created_at, workflow_id


def _csv(params: QueryParams, name: str) -> list[str] | None:
    values = [v for raw in params.getlist(name) for v in raw.split(",") if v]
    if not values:
        return None
    if len(values) > MAX_FILTER_VALUES or any(len(v) > MAX_FILTER_VALUE_LEN for v in values):
        raise ApiError(400, f"{name}: at most {MAX_FILTER_VALUES} values, each at most 200 chars")
    if any("\x00" in v for v in values):
        raise ApiError(400, f"{name}: values must not contain NUL characters")
    return values


def parse_list_query(params: QueryParams) -> ListQuery:
    unknown = sorted(set(params.keys()) - {"limit", "cursor", "status", "name", "queue"})
    if unknown:
        raise ApiError(400, f"unknown query parameter(s): {', '.join(unknown)}")
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    valid = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 6
    if not valid or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    statuses = _csv(params, "status")
    if statuses:
        statuses = [s.upper() for s in statuses]
        bad = [s for s in statuses if s not in WORKFLOW_STATUSES]
        if bad:
            raise ApiError(
                400, f"status must be one of {', '.join(WORKFLOW_STATUSES)} (got {bad[0]!r})"
            )
    cursor = params.get("cursor")
    return ListQuery(
        limit=int(raw_limit),
        statuses=statuses,
        names=_csv(params, "name"),
        queue_names=_csv(params, "queue"),
        after=decode_cursor(cursor) if cursor else None,
    )
