"""/api/workflows: enqueue, list (keyset-paginated), get, cancel, resume."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from dbos import DBOSClient, EnqueueOptions, WorkflowHandle
from dbos._error import DBOSWorkflowIDInUseError
from dbos._serialization import WorkflowSerializationFormat
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.api.errors import ApiError
from services.api.serialize import workflow_json
from services.api.validation import (
    EnqueueRequest,
    encode_cursor,
    idempotent_workflow_id,
    parse_enqueue,
    parse_idempotency_key,
    parse_json_object,
    parse_list_query,
)
from services.common.names import DEMO_WORKFLOW, WORKFLOW_QUEUE
from services.common.settings import Settings
from services.common.sql import WorkflowQueries, WorkflowRow

log = logging.getLogger("queue_worker.api")

CANCELLABLE = {"ENQUEUED", "DELAYED", "PENDING", "CANCELLED"}
RESUMABLE = {"CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}


def _state(request: Request) -> tuple[Settings, DBOSClient, WorkflowQueries]:
    state = request.app.state
    return state.settings, state.client, state.queries


def _location(workflow_id: str) -> str:
    return f"/api/workflows/{workflow_id}"


def _enqueue(client: DBOSClient, req: EnqueueRequest, workflow_id: str | None) -> str:
    options: EnqueueOptions = {
        "queue_name": WORKFLOW_QUEUE,
        "workflow_name": DEMO_WORKFLOW,
        # Inputs as JSON: readable by any client, and no pickle on the API side.
        "serialization_type": WorkflowSerializationFormat.PORTABLE,
        # num_steps lets the list show "0 of N" before the first step runs; the fingerprint
        # tells an idempotent retry from a different request reusing the same key.
        "attributes": {
            "num_steps": req.num_steps,
            "queue": WORKFLOW_QUEUE,
            "request_fingerprint": req.fingerprint(),
        },
    }
    if workflow_id is not None:
        options["workflow_id"] = workflow_id
        # Raise instead of returning the existing row: the caller must then compare that row's
        # fingerprint, because only the row that exists says which body the key belongs to.
        options["workflow_id_reuse_policy"] = "reject"
    if req.priority is not None:
        options["priority"] = req.priority
    handle: WorkflowHandle[dict[str, int]] = client.enqueue(
        options, req.num_steps, req.step_seconds
    )
    return handle.get_workflow_id()


def _check_replay(stored_fingerprint: str | None, fingerprint: str) -> bool:
    """True if the key's row exists with this request's fingerprint (a retry); False if no row
    exists; a 409 if the row holds a different request."""
    if stored_fingerprint is None:
        return False
    if stored_fingerprint != fingerprint:
        raise ApiError(409, "Idempotency-Key was already used for a different request body")
    return True


async def enqueue_workflow(request: Request) -> Response:
    settings, client, queries = _state(request)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "Content-Type must be application/json")
    body = parse_json_object(await request.body())
    req = parse_enqueue(
        body,
        max_num_steps=settings.max_num_steps,
        default_step_seconds=settings.default_step_seconds,
    )
    keys = request.headers.getlist("idempotency-key")
    if len(keys) > 1:
        raise ApiError(400, "send one Idempotency-Key header, not several")
    key = parse_idempotency_key(keys[0] if keys else None)
    workflow_id = idempotent_workflow_id(key) if key is not None else None
    replayed = False
    if workflow_id is not None:
        # A cheap read first: most reuses of a key are retries of a request that already landed.
        replayed = _check_replay(
            await run_in_threadpool(queries.get_fingerprint, workflow_id), req.fingerprint()
        )
    if not replayed:
        try:
            workflow_id = await run_in_threadpool(_enqueue, client, req, workflow_id)
        except DBOSWorkflowIDInUseError:
            # Another request with this key inserted the row between our read and our insert.
            # The row exists now, so its stored fingerprint decides: a retry, or a conflict.
            assert workflow_id is not None
            stored = await run_in_threadpool(queries.get_fingerprint, workflow_id)
            replayed = _check_replay(stored, req.fingerprint())
            if not replayed:  # the row vanished again (deleted by retention): never accept blind
                raise ApiError(409, "Idempotency-Key is in use; retry the request") from None
    assert workflow_id is not None
    # Debug, not info: one line per enqueue costs measurable CPU at a thousand requests a second.
    log.debug(
        "workflow enqueued",
        extra={"workflow_id": workflow_id, "num_steps": req.num_steps, "replayed": replayed},
    )
    body_out: dict[str, Any] = {
        "workflow_id": workflow_id,
        "workflow_status": "ENQUEUED",
        "steps_completed": 0,
        "num_steps": req.num_steps,
        "queue_name": WORKFLOW_QUEUE,
        "url": _location(workflow_id),
    }
    if replayed:
        row = await run_in_threadpool(queries.get, workflow_id)
        if row is not None:
            body_out.update(workflow_json(row))
            body_out["url"] = _location(workflow_id)
    headers = {"Location": _location(workflow_id)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body_out, status_code=202, headers=headers)


async def list_workflows(request: Request) -> Response:
    _, _, queries = _state(request)
    q = parse_list_query(request.query_params)
    # One row more than asked tells whether a next page exists without a second query.
    rows = await run_in_threadpool(
        lambda: queries.list_page(
            limit=q.limit + 1,
            statuses=q.statuses,
            names=q.names,
            queue_names=q.queue_names,
            after=q.after,
        )
    )
    headers = {}
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        last = rows[-1]
        next_params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        next_params.append(("cursor", encode_cursor(last.created_at_ms, last.workflow_id)))
        headers["Link"] = f'<{request.url.path}?{urlencode(next_params)}>; rel="next"'
    return JSONResponse([workflow_json(r) for r in rows], headers=headers)


async def _get_or_404(queries: WorkflowQueries, workflow_id: str) -> WorkflowRow:
    # No workflow id holds NUL (Postgres text cannot), and Postgres refuses to compare with one.
    row = None if "\x00" in workflow_id else await run_in_threadpool(queries.get, workflow_id)
    if row is None:
        shown = workflow_id if len(workflow_id) <= 100 else workflow_id[:100] + "..."
        raise ApiError(404, f"no workflow with id {shown!r}")
    return row


async def get_workflow(request: Request) -> Response:
    _, _, queries = _state(request)
    row = await _get_or_404(queries, request.path_params["workflow_id"])
    return JSONResponse(workflow_json(row, detail=True))


async def cancel_workflow(request: Request) -> Response:
    _, client, queries = _state(request)
    row = await _get_or_404(queries, request.path_params["workflow_id"])
    if row.status not in CANCELLABLE:
        raise ApiError(409, f"workflow is {row.status}; only unfinished workflows can be cancelled")
    await run_in_threadpool(client.cancel_workflow, row.workflow_id)
    log.info("workflow cancelled", extra={"workflow_id": row.workflow_id})
    row = await _get_or_404(queries, row.workflow_id)
    return JSONResponse(workflow_json(row, detail=True), status_code=202)


async def resume_workflow(request: Request) -> Response:
    _, client, queries = _state(request)
    row = await _get_or_404(queries, request.path_params["workflow_id"])
    if row.status not in RESUMABLE:
        raise ApiError(
            409, f"workflow is {row.status}; only {' or '.join(sorted(RESUMABLE))} can resume"
        )
    # Back onto its own queue (cancel clears queue_name), so worker_concurrency still applies.
    queue = row.queue_hint or WORKFLOW_QUEUE
    await run_in_threadpool(lambda: client.resume_workflow(row.workflow_id, queue_name=queue))
    log.info("workflow resumed", extra={"workflow_id": row.workflow_id, "queue": queue})
    row = await _get_or_404(queries, row.workflow_id)
    return JSONResponse(workflow_json(row, detail=True), status_code=202)


routes = [
    Route("/api/workflows", enqueue_workflow, methods=["POST"]),
    Route("/api/workflows", list_workflows, methods=["GET"]),
    Route("/api/workflows/{workflow_id}", get_workflow, methods=["GET"]),
    Route("/api/workflows/{workflow_id}/cancel", cancel_workflow, methods=["POST"]),
    Route("/api/workflows/{workflow_id}/resume", resume_workflow, methods=["POST"]),
]
