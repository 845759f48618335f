"""Checks for /api/schedules: every bad field is a 422 naming it, before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from services.api.errors import ApiError
from services.api.validation import parse_timestamp, validate_input
from services.common.catalogue import Catalogue, WorkflowType

# Runs enqueued by one backfill at most: a wider window is refused, not truncated.
MAX_BACKFILL_RUNS = 1000
MAX_CRON_LENGTH = 200
MAX_TIMEZONE_LENGTH = 64
# Schedule names end up in workflow ids (sched-{name}-{time}) and URL paths.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
NAME_RULE = "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
CREATE_FIELDS = ("name", "type", "input", "cron", "timezone", "automatic_backfill")


@dataclass(frozen=True)
class ScheduleRequest:
    name: str
    type: WorkflowType
    input: dict[str, Any]
    cron: str
    timezone: str | None
    automatic_backfill: bool


def valid_name(name: str) -> bool:
    return bool(NAME.match(name))


def zone(name: str | None) -> tzinfo:
    return ZoneInfo(name) if name else UTC


def next_run(cron: str, timezone: str | None, after: datetime) -> datetime:
    """The first cron time after `after` (DBOS reads 6 fields as seconds first)."""
    it = croniter(cron, after.astimezone(zone(timezone)), second_at_beginning=True)
    value: datetime = it.get_next(datetime)
    return value


def _fires(cron: str) -> bool:
    """Valid, and due some time: croniter accepts 30 February but never reaches it."""
    if not croniter.is_valid(cron, second_at_beginning=True):
        return False
    try:
        next_run(cron, None, datetime.now(UTC))
    except Exception:
        return False
    return True


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:  # unknown, or not a zone file's name (ValueError for "../x" or NUL)
        return False
    return True


def _cron(value: Any) -> str:
    ok = isinstance(value, str) and 0 < len(value) <= MAX_CRON_LENGTH and value.isascii()
    if ok and value.isprintable() and _fires(value):
        return str(value)
    raise ApiError(
        422,
        "cron must be a cron expression of 5 fields (minute hour day month weekday) or 6 "
        "(seconds first), e.g. '*/5 * * * *' or '*/10 * * * * *'",
        field="cron",
    )


def _timezone(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and 0 < len(value) <= MAX_TIMEZONE_LENGTH and _known_zone(value):
        return value
    raise ApiError(
        422, "timezone must be an IANA time zone name, e.g. Europe/Paris", field="timezone"
    )


def parse_create(body: dict[str, Any], catalogue: Catalogue) -> ScheduleRequest:
    unknown = sorted(set(body) - set(CREATE_FIELDS))
    if unknown:
        raise ApiError(422, f"{unknown[0]} is not a known field", field=unknown[0])
    name = body.get("name")
    if not isinstance(name, str) or not valid_name(name):
        raise ApiError(422, f"name must be {NAME_RULE}", field="name")
    type_name = body.get("type")
    wtype = catalogue.get(type_name) if isinstance(type_name, str) else None
    if wtype is None:
        known = ", ".join(catalogue.types)
        raise ApiError(
            422, f"type must be a declared workflow type (one of: {known})", field="type"
        )
    if "input" not in body:
        raise ApiError(422, "input is required", field="input")
    workflow_input = validate_input(wtype, body["input"], prefix="input")
    cron = _cron(body.get("cron"))
    timezone = _timezone(body.get("timezone"))
    backfill = body.get("automatic_backfill", False)
    if not isinstance(backfill, bool):
        raise ApiError(422, "automatic_backfill must be true or false", field="automatic_backfill")
    return ScheduleRequest(name, wtype, workflow_input, cron, timezone, backfill)


def parse_backfill(
    body: dict[str, Any], cron: str, timezone: str | None
) -> tuple[datetime, datetime]:
    """The window (start, end), both exclusive as in DBOS, in the past, holding at most
    MAX_BACKFILL_RUNS cron times."""
    unknown = sorted(set(body) - {"start", "end"})
    if unknown:
        raise ApiError(422, f"{unknown[0]} is not a known field", field=unknown[0])
    for field in ("start", "end"):
        if field not in body:
            raise ApiError(422, f"{field} is required", field=field)
    start, end = parse_timestamp(body["start"], "start"), parse_timestamp(body["end"], "end")
    try:
        ordered = start < end
        future = end > datetime.now(UTC)
    except OverflowError:  # the calendar's ends with an offset
        ordered, future = False, True
    if not ordered:
        raise ApiError(422, "end must be later than start", field="end")
    if future:
        # A future time enqueued now would run early and then be skipped by the live scheduler.
        raise ApiError(422, "end must not be in the future; backfill covers past runs", field="end")
    count = 0
    try:
        it = croniter(cron, start.astimezone(zone(timezone)), second_at_beginning=True)
        while it.get_next(datetime) < end:
            count += 1
            if count > MAX_BACKFILL_RUNS:
                raise ApiError(
                    422,
                    f"start to end holds more than {MAX_BACKFILL_RUNS} runs; backfill a shorter "
                    "window",
                    field="start",
                )
    except (OverflowError, ValueError):
        raise ApiError(422, "start is out of range", field="start") from None
    return start, end
