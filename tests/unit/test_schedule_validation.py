"""The checks behind /api/schedules and run_at, without a server: each refusal names its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.api.errors import ApiError
from services.api.schedule_validation import MAX_BACKFILL_RUNS, parse_backfill, parse_create
from services.api.validation import MAX_DELAY_SECONDS, parse_run_at, parse_timestamp
from services.common.workflow_types import catalogue

CATALOGUE = catalogue(max_num_steps=50)
GOOD = {"name": "nightly", "type": "demo", "input": {"num_steps": 2}, "cron": "0 3 * * *"}


def refused(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args)
    assert info.value.status == 422
    return info.value


def test_a_good_schedule_is_parsed_with_the_inputs_defaults() -> None:
    req = parse_create({**GOOD, "timezone": "Europe/Paris"}, CATALOGUE)
    assert (req.name, req.type.name, req.cron, req.timezone) == (
        "nightly",
        "demo",
        "0 3 * * *",
        "Europe/Paris",
    )
    assert req.input == {"num_steps": 2, "step_seconds": 1.0}
    assert parse_create({**GOOD, "cron": "*/5 * * * * *"}, CATALOGUE).cron == "*/5 * * * * *"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"cron": "* * * * * * * *"}, "cron"),
        ({"cron": "*/5 * * * *\x00"}, "cron"),
        ({"cron": 5}, "cron"),
        ({"timezone": "Nowhere/Special"}, "timezone"),
        ({"timezone": "/etc/passwd"}, "timezone"),
        ({"type": "nope"}, "type"),
        ({"input": {"num_steps": 51}}, "input.num_steps"),
        ({"input": []}, "input"),
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"automatic_backfill": "yes"}, "automatic_backfill"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_schedules_name_the_field(change: dict[str, Any], field: str) -> None:
    assert refused(parse_create, {**GOOD, **change}, CATALOGUE).field == field


def test_backfill_is_bounded_by_the_number_of_runs() -> None:
    end = datetime(2026, 1, 1, tzinfo=UTC)
    # Every second: exactly MAX_BACKFILL_RUNS times strictly inside the window is allowed...
    start = end - timedelta(seconds=MAX_BACKFILL_RUNS + 1)
    body = {"start": start.isoformat(), "end": end.isoformat()}
    assert parse_backfill(body, "* * * * * *", None) == (start, end)
    # ...one more is refused, naming start.
    body["start"] = (start - timedelta(seconds=1)).isoformat()
    assert refused(parse_backfill, body, "* * * * * *", None).field == "start"


def test_run_at_accepts_rfc_3339_with_an_offset_only() -> None:
    assert parse_timestamp("2026-01-31T09:00:00Z", "run_at") == datetime(2026, 1, 31, 9, tzinfo=UTC)
    plus_one = parse_timestamp("2026-01-31T10:00:00.5+01:00", "run_at")
    assert plus_one == datetime(2026, 1, 31, 9, 0, 0, 500000, tzinfo=UTC)
    for bad in ("2026-01-31T09:00:00", "2026-01-31 09:00:00Z", "2026-13-01T00:00:00Z", "", 17):
        assert refused(parse_timestamp, bad, "run_at").field == "run_at"
    past = parse_run_at("1999-01-01T00:00:00Z", "run_at")  # runs at once: accepted
    assert past.year == 1999
    too_far = datetime.now(UTC) + timedelta(seconds=MAX_DELAY_SECONDS + 60)
    assert refused(parse_run_at, too_far.isoformat(), "run_at").field == "run_at"
    assert refused(parse_run_at, "9999-12-31T23:59:59-23:59", "run_at").field == "run_at"
