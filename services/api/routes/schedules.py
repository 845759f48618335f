"""/api/schedules: cron schedules of declared workflow types, backed by DBOS 3.4's schedules.

The API writes and reads them through DBOSClient (create, list, pause, resume, trigger, backfill,
delete: all public client methods); the workers run them: DBOS.launch() starts a scheduler that
re-reads the schedules every SCHEDULER_POLLING_INTERVAL_SECONDS and fires each active one on its
cron. Each firing runs services/worker/schedule_runner.py, which enqueues the schedule's type
with its input; the run's workflow id is the firing's id plus "-run" (schedule_context.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from dbos import DBOSClient, WorkflowSchedule
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.api.errors import ApiError
from services.api.routes.workflows import _require_json
from services.api.schedule_validation import next_run, parse_backfill, parse_create, valid_name
from services.api.validation import parse_json_object
from services.common.dbos_internals import DBOSException
from services.common.names import SCHEDULE_WORKFLOW
from services.common.schedule_context import make_context, read_context, run_workflow_id

log = logging.getLogger("queue_worker.api")


def _client(request: Request) -> DBOSClient:
    client: DBOSClient = request.app.state.client
    return client


def _url(workflow_id: str) -> str:
    return f"/api/workflows/{workflow_id}"


def schedule_json(s: WorkflowSchedule) -> dict[str, Any]:
    target = read_context(s["context"])
    active = s["status"] == "ACTIVE"
    upcoming = None
    if active:
        try:
            upcoming = next_run(s["schedule"], s["cron_timezone"], datetime.now(UTC)).isoformat()
        except Exception:  # a row written elsewhere with a cron this croniter cannot read
            upcoming = None
    return {
        "name": s["schedule_name"],
        "type": target[0] if target else None,
        "input": target[1] if target else None,
        "cron": s["schedule"],
        "timezone": s["cron_timezone"],
        "status": s["status"],
        "automatic_backfill": bool(s["automatic_backfill"]),
        "last_fired_at": s["last_fired_at"],
        "next_run_at": upcoming,
    }


async def _get_or_404(request: Request) -> WorkflowSchedule:
    name = request.path_params["name"]
    schedule = None
    if valid_name(name):  # anything else cannot exist (and NUL cannot reach Postgres)
        schedule = await run_in_threadpool(_client(request).get_schedule, name)
    if schedule is None or schedule["workflow_name"] != SCHEDULE_WORKFLOW:
        shown = name if len(name) <= 100 else name[:100] + "..."
        raise ApiError(404, f"no schedule named {shown!r}")
    return schedule


async def create_schedule(request: Request) -> Response:
    _require_json(request)
    req = parse_create(parse_json_object(await request.body()), request.app.state.catalogue)
    client = _client(request)
    if await run_in_threadpool(client.get_schedule, req.name) is not None:
        raise ApiError(409, f"name: a schedule named {req.name!r} exists", field="name")
    try:
        await run_in_threadpool(
            lambda: client.create_schedule(
                schedule_name=req.name,
                workflow_name=SCHEDULE_WORKFLOW,
                schedule=req.cron,
                context=make_context(req.type.name, req.input),
                automatic_backfill=req.automatic_backfill,
                cron_timezone=req.timezone,
            )
        )
    except DBOSException as exc:  # created by another request since the check above
        if "already exists" not in str(exc):
            raise
        raise ApiError(409, f"name: a schedule named {req.name!r} exists", field="name") from None
    log.info("schedule created", extra={"schedule": req.name, "type": req.type.name})
    created = await run_in_threadpool(client.get_schedule, req.name)
    assert created is not None
    location = f"/api/schedules/{req.name}"
    return JSONResponse(schedule_json(created), status_code=201, headers={"Location": location})


async def list_schedules(request: Request) -> Response:
    if request.query_params:
        raise ApiError(400, "this endpoint takes no query parameters")
    found = await run_in_threadpool(
        lambda: _client(request).list_schedules(workflow_name=SCHEDULE_WORKFLOW)
    )
    return JSONResponse([schedule_json(s) for s in sorted(found, key=lambda s: s["schedule_name"])])


async def get_schedule(request: Request) -> Response:
    return JSONResponse(schedule_json(await _get_or_404(request)))


async def _set_active(request: Request, active: bool) -> Response:
    schedule = await _get_or_404(request)
    client = _client(request)
    change = client.resume_schedule if active else client.pause_schedule
    await run_in_threadpool(change, schedule["schedule_name"])
    log.info(
        "schedule resumed" if active else "schedule paused",
        extra={"schedule": schedule["schedule_name"]},
    )
    return JSONResponse(schedule_json(await _get_or_404(request)))


async def pause_schedule(request: Request) -> Response:
    return await _set_active(request, False)


async def resume_schedule(request: Request) -> Response:
    return await _set_active(request, True)


def _firing_error(exc: Exception, name: str) -> ApiError:
    """What DBOSClient's trigger and backfill raise, as the client's error: the schedule was
    deleted meanwhile, or no worker ever registered the application (DBOS enqueues a firing
    for the latest registered application version, so it needs one)."""
    if "does not exist" in str(exc):
        return ApiError(404, f"no schedule named {name!r}")
    if "No application versions" in str(exc):
        return ApiError(409, "no worker has started yet to run this schedule; start one first")
    raise exc


async def trigger_schedule(request: Request) -> Response:
    """One run now, whatever the cron and even while paused."""
    schedule = await _get_or_404(request)
    name = schedule["schedule_name"]
    try:
        handle = await run_in_threadpool(_client(request).trigger_schedule, name)
    except DBOSException as exc:
        raise _firing_error(exc, name) from None
    run_id = run_workflow_id(handle.get_workflow_id())
    log.info("schedule triggered", extra={"schedule": schedule["schedule_name"], "run": run_id})
    return JSONResponse({"workflow_id": run_id, "url": _url(run_id)}, status_code=202)


async def backfill_schedule(request: Request) -> Response:
    """The runs the cron would have made between start and end (exclusive); times that already
    ran are skipped (DBOS derives each firing's id from its time)."""
    schedule = await _get_or_404(request)
    _require_json(request)
    body = parse_json_object(await request.body())
    start, end = parse_backfill(body, schedule["schedule"], schedule["cron_timezone"])
    try:
        handles = await run_in_threadpool(
            _client(request).backfill_schedule, schedule["schedule_name"], start, end
        )
    except DBOSException as exc:
        raise _firing_error(exc, schedule["schedule_name"]) from None
    ids = [run_workflow_id(h.get_workflow_id()) for h in handles]
    log.info("schedule backfilled", extra={"schedule": schedule["schedule_name"], "runs": len(ids)})
    return JSONResponse({"workflow_ids": ids}, status_code=202)


async def delete_schedule(request: Request) -> Response:
    schedule = await _get_or_404(request)
    await run_in_threadpool(_client(request).delete_schedule, schedule["schedule_name"])
    log.info("schedule deleted", extra={"schedule": schedule["schedule_name"]})
    return Response(status_code=204)


routes = [
    Route("/api/schedules", create_schedule, methods=["POST"]),
    Route("/api/schedules", list_schedules, methods=["GET"]),
    Route("/api/schedules/{name}", get_schedule, methods=["GET"]),
    Route("/api/schedules/{name}", delete_schedule, methods=["DELETE"]),
    Route("/api/schedules/{name}/pause", pause_schedule, methods=["POST"]),
    Route("/api/schedules/{name}/resume", resume_schedule, methods=["POST"]),
    Route("/api/schedules/{name}/trigger", trigger_schedule, methods=["POST"]),
    Route("/api/schedules/{name}/backfill", backfill_schedule, methods=["POST"]),
]
