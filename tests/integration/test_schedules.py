"""/api/schedules against a real API and a real worker, on Postgres and on SQLite: schedules
fire on their cron in the worker (DBOS's scheduler), pause stops them, trigger and backfill
enqueue runs, and bad input is a 4xx naming the field with nothing written."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest
import sqlalchemy as sa

from tests.conftest import running_stack
from tests.support import Stack, wait_for, wait_status

# The worker re-reads the schedules this often: a pause takes effect within it.
POLL_SECONDS = 0.5


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"schedules-{request.param}")
    with running_stack(
        request,
        request.param,
        workdir,
        MAX_NUM_STEPS="50",
        SCHEDULER_POLLING_INTERVAL_SECONDS=str(POLL_SECONDS),
    ) as s:
        yield s


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as client:
        yield client


def count(stack: Stack, table: str, where: str = "", **params: Any) -> int:
    engine = sa.create_engine(stack.database_url.replace("postgresql://", "postgresql+psycopg://"))
    prefix = "dbos." if engine.dialect.name == "postgresql" else ""
    sql = f"SELECT count(*) FROM {prefix}{table} {where}"
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())
    finally:
        engine.dispose()


def runs(stack: Stack, name: str) -> int:
    """Workflows the schedule's firings enqueued (ids sched-{name}-{time}-run)."""
    return count(stack, "workflow_status", "WHERE workflow_uuid LIKE :p", p=f"sched-{name}-%-run")


def firings(stack: Stack, name: str) -> int:
    return count(
        stack,
        "workflow_status",
        "WHERE workflow_uuid LIKE :p AND workflow_uuid NOT LIKE :r",
        p=f"sched-{name}-%",
        r="%-run",
    )


def create(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {
        "name": f"s-{uuid.uuid4().hex[:10]}",
        "type": "demo",
        "input": {"num_steps": 1, "step_seconds": 0},
        "cron": "0 0 1 1 *",
        **fields,
    }
    resp = http.post("/api/schedules", json=body)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    assert resp.headers["location"] == f"/api/schedules/{created['name']}"
    return created


def assert_documented(http: httpx.Client, schema_name: str, instance: Any) -> None:
    """`instance` validates against the served OpenAPI document's schema `schema_name`."""
    components = http.get("/openapi.json").json()["components"]
    jsonschema.validate(
        instance, {"$ref": f"#/components/schemas/{schema_name}", "components": components}
    )


def test_a_schedule_fires_on_its_cron_and_pause_stops_it(stack: Stack, http: httpx.Client) -> None:
    schedule = create(http, cron="* * * * * *")  # every second (6 fields: seconds first)
    name = schedule["name"]
    assert_documented(http, "Schedule", schedule)
    assert schedule["status"] == "ACTIVE"
    assert schedule["type"] == "demo"
    assert schedule["input"] == {"num_steps": 1, "step_seconds": 0}
    assert schedule["next_run_at"] is not None
    wait_for(lambda: runs(stack, name) >= 2, timeout=30, what="two runs of the schedule")
    listed = {s["name"]: s for s in http.get("/api/schedules").json()}
    assert listed[name]["last_fired_at"] is not None
    assert_documented(http, "Schedule", listed[name])
    # The runs are the declared type's workflow with the schedule's input, on its queue.
    ids = [w["workflow_id"] for w in http.get("/api/workflows", params={"limit": 500}).json()]
    mine = [i for i in ids if i.startswith(f"sched-{name}-") and i.endswith("-run")]
    done = wait_status(http, mine[-1], {"SUCCESS"})
    assert (done["workflow_name"], done["num_steps"], done["steps_completed"]) == ("workflow", 1, 1)

    paused = http.post(f"/api/schedules/{name}/pause")
    assert paused.status_code == 200, paused.text
    assert (paused.json()["status"], paused.json()["next_run_at"]) == ("PAUSED", None)
    time.sleep(POLL_SECONDS * 2 + 1.5)  # the scheduler sees the pause; a firing in flight lands
    settled = firings(stack, name)
    time.sleep(3)
    assert firings(stack, name) == settled, "a paused schedule kept firing"

    assert http.post(f"/api/schedules/{name}/resume").json()["status"] == "ACTIVE"
    wait_for(lambda: firings(stack, name) > settled, timeout=30, what="firing after resume")

    assert http.delete(f"/api/schedules/{name}").status_code == 204
    assert http.get(f"/api/schedules/{name}").status_code == 404
    time.sleep(POLL_SECONDS * 2 + 1.5)
    gone = firings(stack, name)
    time.sleep(2)
    assert firings(stack, name) == gone, "a deleted schedule kept firing"


def test_trigger_runs_the_type_with_the_schedules_input_now(http: httpx.Client) -> None:
    schedule = create(
        http,
        type="fail-after",
        input={"num_steps": 3, "fail_after_steps": 1, "step_seconds": 0},
        timezone="Europe/Paris",
    )
    http.post(f"/api/schedules/{schedule['name']}/pause")  # trigger works while paused too
    resp = http.post(f"/api/schedules/{schedule['name']}/trigger")
    assert resp.status_code == 202, resp.text
    run = wait_status(http, resp.json()["workflow_id"], {"ERROR", "SUCCESS"})
    assert (run["workflow_name"], run["workflow_status"]) == ("fail-after", "ERROR")
    assert (run["num_steps"], run["steps_completed"]) == (3, 1)
    assert resp.json()["url"] == f"/api/workflows/{run['workflow_id']}"
    assert_documented(http, "TriggerResponse", resp.json())


def test_backfill_enqueues_the_missed_runs_once(stack: Stack, http: httpx.Client) -> None:
    schedule = create(http, cron="0 * * * *")  # hourly
    name = schedule["name"]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    window = {
        "start": (hour - timedelta(hours=3, minutes=30)).isoformat(),
        "end": (hour - timedelta(minutes=30)).isoformat(),
    }
    resp = http.post(f"/api/schedules/{name}/backfill", json=window)
    assert resp.status_code == 202, resp.text
    ids = resp.json()["workflow_ids"]
    assert len(ids) == 3  # the three hours strictly inside the window
    for workflow_id in ids:
        assert wait_status(http, workflow_id, {"SUCCESS"})["steps_completed"] == 1
    again = http.post(f"/api/schedules/{name}/backfill", json=window)
    assert again.json()["workflow_ids"] == ids
    assert runs(stack, name) == 3  # times that already ran are not run again


BAD_CREATE: list[tuple[str, dict[str, Any], int, str]] = [
    ("bad cron", {"cron": "every day"}, 422, "cron"),
    ("cron out of range", {"cron": "61 * * * *"}, 422, "cron"),
    ("cron never due", {"cron": "0 0 30 2 *"}, 422, "cron"),
    ("unknown type", {"type": "nope"}, 422, "type"),
    ("input not matching", {"input": {"num_steps": 0}}, 422, "input.num_steps"),
    ("input missing field", {"type": "fail-after"}, 422, "input.fail_after_steps"),
    ("input unknown field", {"input": {"num_steps": 1, "x": 1}}, 422, "input.x"),
    ("bad timezone", {"timezone": "Mars/Olympus"}, 422, "timezone"),
    ("path timezone", {"timezone": "../../etc/passwd"}, 422, "timezone"),
    ("bad name", {"name": "no spaces"}, 422, "name"),
    ("unknown field", {"when": "now"}, 422, "when"),
]


@pytest.mark.parametrize(
    ("case", "fields", "status", "field"), BAD_CREATE, ids=[c[0] for c in BAD_CREATE]
)
def test_bad_schedules_name_the_field_and_write_nothing(
    stack: Stack, http: httpx.Client, case: str, fields: dict[str, Any], status: int, field: str
) -> None:
    body = {"name": f"bad-{uuid.uuid4().hex[:8]}", "type": "demo", "input": {"num_steps": 1}}
    body |= {"cron": "* * * * *", **fields}
    before = count(stack, "workflow_schedules")
    resp = http.post("/api/schedules", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["field"] == field
    assert field in resp.json()["error"]["message"]
    assert count(stack, "workflow_schedules") == before


def test_duplicate_names_and_bad_backfills_are_refused(stack: Stack, http: httpx.Client) -> None:
    schedule = create(http, cron="* * * * * *")
    name = schedule["name"]
    http.post(f"/api/schedules/{name}/pause")
    before = count(stack, "workflow_schedules")
    fields = {k: schedule[k] for k in ("name", "type", "input", "timezone")}
    dup = http.post("/api/schedules", json={**fields, "cron": "* * * * *"})
    assert dup.status_code == 409, dup.text
    assert dup.json()["error"]["field"] == "name"
    assert count(stack, "workflow_schedules") == before
    assert http.get(f"/api/schedules/{name}").json()["cron"] == "* * * * * *"  # untouched

    now = datetime.now(UTC)
    bad = [
        ({"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}, "start"),
        ({"start": (now - timedelta(seconds=5)).isoformat(), "end": "tomorrow"}, "end"),
        ({"start": now.isoformat(), "end": (now - timedelta(seconds=5)).isoformat()}, "end"),
        ({"start": (now - timedelta(seconds=5)).isoformat()}, "end"),
        ({"start": (now - timedelta(seconds=5)).isoformat(),
          "end": (now + timedelta(hours=1)).isoformat()}, "end"),
    ]  # fmt: skip
    rows = count(stack, "workflow_status")
    for window, field in bad:
        resp = http.post(f"/api/schedules/{name}/backfill", json=window)
        assert resp.status_code == 422, (window, resp.text)
        assert resp.json()["error"]["field"] == field, window
    assert count(stack, "workflow_status") == rows


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("DELETE", ""), ("POST", "/pause"), ("POST", "/resume"), ("POST", "/trigger")],
)
def test_unknown_schedules_are_404(http: httpx.Client, method: str, suffix: str) -> None:
    for name in ("no-such-schedule", "a%00b", "x" * 300):
        resp = http.request(method, f"/api/schedules/{name}{suffix}")
        assert resp.status_code == 404, resp.text
        assert "schedule" in resp.json()["error"]["message"]


def test_before_any_worker_started_firing_is_a_409(database_url: str, tmp_path: Any) -> None:
    """DBOS enqueues a firing for the latest registered application version: with no worker
    ever started there is none, and trigger and backfill say so instead of failing."""
    stack = Stack(database_url, tmp_path)
    try:
        stack.start_api()
        with stack.client() as http:
            name = create(http, cron="0 * * * *")["name"]
            resp = http.post(f"/api/schedules/{name}/trigger")
            assert resp.status_code == 409, resp.text
            assert "worker" in resp.json()["error"]["message"]
            end = datetime.now(UTC) - timedelta(minutes=1)
            window = {"start": (end - timedelta(hours=3)).isoformat(), "end": end.isoformat()}
            resp = http.post(f"/api/schedules/{name}/backfill", json=window)
            assert resp.status_code == 409, resp.text
            assert count(stack, "workflow_status") == 0
    finally:
        stack.stop()
