"""Request validation: every check that turns bad input into a 4xx with a clear message."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from services.api.errors import ApiError
from services.common.catalogue import Catalogue, InputError, WorkflowType, fingerprint
from services.common.names import WORKFLOW_STATUSES
from services.common.workflow_types import DEMO

MAX_PRIORITY = 2**31 - 1  # DBOS's bound; lower values run first, omitted runs before any value
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_IDEMPOTENCY_KEY = 200
MAX_FILTER_VALUES = 20
MAX_FILTER_VALUE_LEN = 200


# Enqueue options any request may carry beside the input (passed to DBOS's own options).
OPTION_FIELDS = ("priority", "delay_seconds", "run_at", "timeout_seconds", "partition_key")
# A tenant or customer id: printable, no spaces, bounded, so it is safe in logs, URLs and labels.
MAX_PARTITION_KEY = 128
PARTITION_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$")
MAX_DELAY_SECONDS = 30 * 24 * 3600.0  # also bounds run_at: at most this far from now
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600.0
MAX_BATCH_ITEMS = 1000
BATCH_ITEM_FIELDS = ("type", "input", "idempotency_key", *OPTION_FIELDS)


@dataclass(frozen=True)
class EnqueueRequest:
    """One workflow to enqueue: a declared type, its validated input (defaults filled in) and
    the enqueue options."""

    type: WorkflowType
    input: dict[str, Any]
    priority: int | None = None
    delay_seconds: float | None = None
    timeout_seconds: float | None = None
    # An absolute start time (run_at); the delay is computed from it when the row is written, so
    # a retry of the same body later still has the same fingerprint.
    run_at: datetime | None = None
    # The tenant whose per-key limits apply (queue_partition_key); None: DEFAULT_PARTITION_KEY.
    partition_key: str | None = None

    def delay(self) -> float | None:
        """Seconds to hold the workflow back from now (None: runnable at once)."""
        if self.run_at is None:
            return self.delay_seconds
        try:
            seconds = (self.run_at - datetime.now(UTC)).total_seconds()
        except OverflowError:  # year 1 with a positive offset: long past
            return None
        return seconds if seconds > 0 else None

    @property
    def num_steps(self) -> int | None:
        value = self.input.get("num_steps")
        return value if _is_int(value) else None

    def fingerprint(self) -> str:
        """Identifies the request's content, to tell a retry from a reused Idempotency-Key."""
        options_given = (self.delay_seconds, self.timeout_seconds, self.run_at, self.partition_key)
        plain = options_given == (None,) * 4
        if self.type.name == DEMO and plain:
            # The demo's fingerprint as it was before the catalogue, so a retry of a request made
            # before an upgrade still matches the workflow it created.
            step_seconds = float(self.input["step_seconds"])
            return fingerprint([self.input["num_steps"], step_seconds, self.priority])
        options: list[Any] = [self.priority, self.delay_seconds, self.timeout_seconds]
        if self.run_at is not None:  # appended only when given: older fingerprints still match
            options.append(self.run_at.isoformat())
        if self.partition_key is not None:  # likewise
            options.append(self.partition_key)
        return fingerprint([self.type.name, self.input, options])


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


def _input(wtype: WorkflowType, value: Any, prefix: str | None = None) -> dict[str, Any]:
    try:
        return wtype.validate(value)
    except InputError as exc:
        err = exc.under(prefix) if prefix else exc
        raise ApiError(422, err.message, field=err.field) from None


def validate_input(wtype: WorkflowType, value: Any, prefix: str | None = None) -> dict[str, Any]:
    """A type's input checked against its schema (defaults filled in); a 422 naming the field,
    placed under `prefix` (e.g. "input.num_steps")."""
    return _input(wtype, value, prefix)


def _number(value: Any, name: str, lo: float, hi: float, *, exclusive_lo: bool = False) -> float:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (lo < value if exclusive_lo else lo <= value)
        and value <= hi
    )
    if not ok:
        bound = f"greater than {lo:g}" if exclusive_lo else f"from {lo:g}"
        raise ApiError(422, f"{name} must be a number {bound} to {hi:g}", field=name)
    return float(value)


# RFC 3339 (section 5.6): a date, "T", a time and an offset ("Z" or +hh:mm); no local times.
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_timestamp(value: Any, name: str) -> datetime:
    """An RFC 3339 timestamp with an offset, e.g. 2026-01-31T09:00:00Z or ...T10:00:00+01:00."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    parsed = None
    if match:
        date, time, fraction, offset = match.groups()
        fraction = (fraction or "")[:7]  # datetime keeps microseconds
        offset = "+00:00" if offset in ("Z", "z") else offset
        try:
            parsed = datetime.fromisoformat(f"{date}T{time}{fraction}{offset}")
        except ValueError:  # 2026-02-30, 25:00:00, +24:00
            parsed = None
    if parsed is None:
        raise ApiError(
            422,
            f"{name} must be an RFC 3339 timestamp with an offset, e.g. 2026-01-31T09:00:00Z",
            field=name,
        )
    return parsed


def parse_run_at(value: Any, name: str) -> datetime:
    """run_at: a time in the past runs at once (like delay_seconds 0); more than
    MAX_DELAY_SECONDS ahead is refused, the same bound as delay_seconds."""
    run_at = parse_timestamp(value, name)
    try:
        ahead = (run_at - datetime.now(UTC)).total_seconds()
    except OverflowError:  # only at the ends of the calendar (year 1 or 9999 with an offset)
        ahead = math.inf if run_at.year > 1 else -math.inf
    if ahead > MAX_DELAY_SECONDS:
        days = MAX_DELAY_SECONDS / 86400
        raise ApiError(422, f"{name} must be at most {days:g} days from now", field=name)
    return run_at


def parse_options(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """priority, delay_seconds (or run_at), timeout_seconds and partition_key, each optional
    (null is the same as absent)."""
    out: dict[str, Any] = {}
    raw = values.get("priority")
    if raw is not None:
        priority = _json_int(raw)
        if priority is None or not 1 <= priority <= MAX_PRIORITY:
            name = f"{prefix}priority"
            raise ApiError(422, f"{name} must be an integer from 1 to {MAX_PRIORITY}", field=name)
        out["priority"] = priority
    if values.get("delay_seconds") is not None:
        out["delay_seconds"] = _number(
            values["delay_seconds"], f"{prefix}delay_seconds", 0, MAX_DELAY_SECONDS
        )
    if values.get("run_at") is not None:
        name = f"{prefix}run_at"
        if "delay_seconds" in out:
            raise ApiError(422, f"{name}: give run_at or delay_seconds, not both", field=name)
        out["run_at"] = parse_run_at(values["run_at"], name)
    if values.get("timeout_seconds") is not None:
        out["timeout_seconds"] = _number(
            values["timeout_seconds"],
            f"{prefix}timeout_seconds",
            0,
            MAX_TIMEOUT_SECONDS,
            exclusive_lo=True,
        )
    raw = values.get("partition_key")
    if raw is not None:
        out["partition_key"] = _partition_key(raw, f"{prefix}partition_key")
    return out


def _partition_key(value: Any, name: str) -> str:
    if not isinstance(value, str) or not PARTITION_KEY.match(value):
        raise ApiError(
            422,
            f"{name} must be 1-{MAX_PARTITION_KEY} characters: letters, digits and . _ : @ / + = -"
            ", starting with a letter or digit",
            field=name,
        )
    return value


def parse_enqueue(body: dict[str, Any], catalogue: Catalogue) -> EnqueueRequest:
    """The seed's POST /api/workflows: the demo's input and the options in one object."""
    demo = catalogue.types[DEMO]
    options = parse_options(body)
    workflow_input = _input(demo, {k: v for k, v in body.items() if k not in OPTION_FIELDS})
    return EnqueueRequest(type=demo, input=workflow_input, **options)


def parse_typed_enqueue(
    wtype: WorkflowType, body: dict[str, Any], params: QueryParams
) -> EnqueueRequest:
    """POST /api/workflows/{type}: the type's input as the body, options as query parameters."""
    unknown = sorted(set(params.keys()) - set(OPTION_FIELDS))
    if unknown:
        raise ApiError(400, f"unknown query parameter(s): {', '.join(unknown)}", field=unknown[0])
    values: dict[str, Any] = {}
    for name in OPTION_FIELDS:
        raw = params.get(name)
        if raw is None:
            continue
        if name == "partition_key":  # a string as sent: "42" is a tenant, not a number
            values[name] = raw
            continue
        if name == "run_at":
            # A query string turns an unencoded "+" into a space; an RFC 3339 time has no space.
            values[name] = raw.replace(" ", "+")
            continue
        try:
            values[name] = json.loads(raw) if raw.strip() else raw
        except ValueError:
            values[name] = raw  # parse_options names the field
    options = parse_options(values)
    return EnqueueRequest(type=wtype, input=_input(wtype, body), **options)


def parse_batch(
    body: dict[str, Any], catalogue: Catalogue
) -> list[tuple[EnqueueRequest, str | None]]:
    """POST /api/workflows/batch: every item validated before anything is written; the first
    bad item's index and field are named."""
    unknown = sorted(set(body) - {"workflows"})
    if unknown:
        raise ApiError(422, f"{unknown[0]} is not a known field", field=unknown[0])
    items = body.get("workflows")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise ApiError(
            422,
            f"workflows must be an array of 1 to {MAX_BATCH_ITEMS} items",
            field="workflows",
        )
    parsed: list[tuple[EnqueueRequest, str | None]] = []
    for index, item in enumerate(items):
        where = f"workflows[{index}]"
        try:
            parsed.append(_batch_item(item, where, catalogue))
        except ApiError as exc:
            exc.index = index
            if exc.field is None:
                exc.field = where
            raise
    return parsed


def _batch_item(item: Any, where: str, catalogue: Catalogue) -> tuple[EnqueueRequest, str | None]:
    if not isinstance(item, dict):
        raise ApiError(422, f"{where} must be a JSON object", field=where)
    unknown = sorted(set(item) - set(BATCH_ITEM_FIELDS))
    if unknown:
        name = f"{where}.{unknown[0]}"
        raise ApiError(422, f"{name} is not a known field", field=name)
    type_name = item.get("type", catalogue.default)
    wtype = catalogue.get(type_name) if isinstance(type_name, str) else None
    if wtype is None:
        known = ", ".join(catalogue.types)
        raise ApiError(
            422,
            f"{where}.type is not a declared workflow type (one of: {known})",
            field=f"{where}.type",
        )
    raw_key = item.get("idempotency_key")
    key = None
    if raw_key is not None:
        try:
            key = parse_idempotency_key(raw_key if isinstance(raw_key, str) else "")
        except ApiError as exc:
            name = f"{where}.idempotency_key"
            raise ApiError(
                422,
                f"{name} must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters",
                field=name,
            ) from exc
    if "input" not in item:
        raise ApiError(422, f"{where}.input is required", field=f"{where}.input")
    options = parse_options(item, prefix=f"{where}.")
    workflow_input = _input(wtype, item["input"], prefix=f"{where}.input")
    return EnqueueRequest(type=wtype, input=workflow_input, **options), key


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
