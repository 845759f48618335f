"""/api/workflows: enqueue, list (keyset-paginated), get, cancel, resume."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from dbos import DBOSClient, EnqueueOptions, WorkflowHandle, WorkflowSerializationFormat
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
    parse_batch,
    parse_enqueue,
    parse_idempotency_key,
    parse_json_object,
    parse_list_query,
    parse_typed_enqueue,
)
from services.common.catalogue import Catalogue, WorkflowType
from services.common.dbos_internals import (
    DBOSWorkflowIDInUseError,
    client_engine,
    enqueue_many,
)
from services.common.names import DEFAULT_PARTITION_KEY, WORKFLOW_QUEUE
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


def enqueue_options(req: EnqueueRequest, workflow_id: str | None = None) -> EnqueueOptions:
    """The DBOS options of one validated request (bench/ enqueues with exactly these too)."""
    options: EnqueueOptions = {
        "queue_name": req.type.queue,
        "workflow_name": req.type.workflow_name,
        # Inputs as JSON: readable by any client, and no pickle on the API side.
        "serialization_type": WorkflowSerializationFormat.PORTABLE,
        # num_steps lets the list show "0 of N" before the first step runs; the fingerprint
        # tells an idempotent retry from a different request reusing the same key.
        "attributes": {"queue": req.type.queue, "request_fingerprint": req.fingerprint()},
        # Always a key (DEFAULT_PARTITION_KEY when none is sent): a partitioned queue dequeues
        # only keyed rows, and an unpartitioned one ignores the key.
        "queue_partition_key": req.partition_key or DEFAULT_PARTITION_KEY,
    }
    if req.num_steps is not None:
        options["attributes"]["num_steps"] = req.num_steps
    if workflow_id is not None:
        options["workflow_id"] = workflow_id
        # Raise instead of returning the existing row: the caller must then compare that row's
        # fingerprint, because only the row that exists says which body the key belongs to.
        options["workflow_id_reuse_policy"] = "reject"
    if req.priority is not None:
        options["priority"] = req.priority
    delay = req.delay()  # delay_seconds, or the time left until run_at
    if delay is not None:
        options["delay_seconds"] = delay
    if req.timeout_seconds is not None:
        options["workflow_timeout"] = req.timeout_seconds
    return options


def enqueue_request(client: DBOSClient, req: EnqueueRequest, workflow_id: str | None = None) -> str:
    handle: WorkflowHandle[Any] = client.enqueue(enqueue_options(req, workflow_id), **req.input)
    return handle.get_workflow_id()


def write_group(client: DBOSClient, reqs: list[EnqueueRequest]) -> list[str]:
    """Requests without an Idempotency-Key, in one transaction (the API's Coalescer groups the
    concurrent ones; POST /api/workflows/batch sends its items when none has a key)."""
    engine: sa.Engine = client_engine(client)
    items = [(enqueue_options(r), r.input) for r in reqs]
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            return enqueue_many(client, conn, items)
    # psycopg's pipeline mode: BEGIN, both INSERTs and COMMIT go out together and the results
    # come back at COMMIT, one round trip where they took four.
    with (
        engine.connect() as conn,
        conn.connection.driver_connection.pipeline(),  # type: ignore[union-attr]
        conn.begin(),
    ):
        return enqueue_many(client, conn, items)


def _check_replay(
    stored_fingerprint: str | None, fingerprint: str, index: int | None = None
) -> bool:
    """True if the key's row exists with this request's fingerprint (a retry); False if no row
    exists; a 409 if the row holds a different request."""
    if stored_fingerprint is None:
        return False
    if stored_fingerprint != fingerprint:
        where = "Idempotency-Key" if index is None else f"workflows[{index}].idempotency_key"
        raise ApiError(
            409,
            f"{where} was already used for a different request body",
            field=None if index is None else where,
            index=index,
        )
    return True


def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "Content-Type must be application/json")


async def enqueue_workflow(request: Request) -> Response:
    """The seed's POST /api/workflows: the demo workflow, its input and options in one body."""
    _require_json(request)
    body = parse_json_object(await request.body())
    return await _enqueue_request(request, parse_enqueue(body, request.app.state.catalogue))


def typed_enqueue(wtype: WorkflowType) -> Callable[[Request], Awaitable[Response]]:
    """POST /api/workflows/{type} for one declared type: its input is the body."""

    async def enqueue_typed(request: Request) -> Response:
        _require_json(request)
        body = parse_json_object(await request.body())
        return await _enqueue_request(
            request, parse_typed_enqueue(wtype, body, request.query_params)
        )

    return enqueue_typed


async def _enqueue_request(request: Request, req: EnqueueRequest) -> Response:
    _, client, queries = _state(request)
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
    if workflow_id is None:
        # No key, so no id to collide with: grouped with concurrent requests (coalescer.py).
        workflow_id = await request.app.state.coalescer.submit(req)
    elif not replayed:
        try:
            workflow_id = await run_in_threadpool(enqueue_request, client, req, workflow_id)
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
        extra={"workflow_id": workflow_id, "type": req.type.name, "replayed": replayed},
    )
    body_out: dict[str, Any] = {
        "workflow_id": workflow_id,
        "workflow_status": "DELAYED" if req.delay() else "ENQUEUED",
        "steps_completed": 0 if req.num_steps is not None else None,
        "num_steps": req.num_steps,
        "queue_name": req.type.queue,
        "partition_key": req.partition_key or DEFAULT_PARTITION_KEY,
        "url": _location(workflow_id),
    }
    if replayed:
        # Answer from the stored workflow, never from this request's body.
        row = await run_in_threadpool(queries.get, workflow_id)
        if row is not None:
            body_out.update(workflow_json(row))
            body_out["url"] = _location(workflow_id)
    headers = {"Location": _location(workflow_id)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body_out, status_code=202, headers=headers)


def _enqueue_batch(
    client: DBOSClient, queries: WorkflowQueries, items: list[tuple[EnqueueRequest, str | None]]
) -> list[str]:
    """Every item in one transaction of the system database: all are written, or none."""
    ids: list[str] = []
    engine: sa.Engine = client_engine(client)  # the client's own engine (ours, on Postgres)
    with engine.begin() as conn:
        for index, (req, key) in enumerate(items):
            workflow_id = idempotent_workflow_id(key) if key is not None else None
            try:
                handle: WorkflowHandle[Any] = client.enqueue_in_transaction(
                    conn, enqueue_options(req, workflow_id), **req.input
                )
                ids.append(handle.get_workflow_id())
            except DBOSWorkflowIDInUseError:
                # The key's row exists (committed, or written earlier in this batch): read it in
                # this transaction, and raising rolls back every item written so far.
                assert workflow_id is not None
                stored = queries.get_fingerprint(workflow_id, conn=conn)
                if not _check_replay(stored, req.fingerprint(), index):
                    raise ApiError(
                        409, "an idempotency_key is in use; retry", index=index
                    ) from None
                ids.append(workflow_id)
    return ids


async def enqueue_batch(request: Request) -> Response:
    """POST /api/workflows/batch: validated first, then written in one transaction."""
    _, client, queries = _state(request)
    _require_json(request)
    items = parse_batch(parse_json_object(await request.body()), request.app.state.catalogue)
    if all(key is None for _, key in items):
        ids = await run_in_threadpool(write_group, client, [req for req, _ in items])
    else:
        ids = await run_in_threadpool(_enqueue_batch, client, queries, items)
    log.debug("batch enqueued", extra={"count": len(ids)})
    return JSONResponse({"workflow_ids": ids}, status_code=202)


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


def build_routes(catalogue: Catalogue) -> list[Route]:
    """The workflow routes; one POST /api/workflows/{type} per declared type, so the served
    routes, the OpenAPI document and the catalogue cannot disagree."""
    return [
        Route("/api/workflows", enqueue_workflow, methods=["POST"]),
        Route("/api/workflows", list_workflows, methods=["GET"]),
        Route("/api/workflows/batch", enqueue_batch, methods=["POST"]),
        *(Route(f"/api/workflows/{t.name}", typed_enqueue(t), methods=["POST"]) for t in catalogue),
        Route("/api/workflows/{workflow_id}", get_workflow, methods=["GET"]),
        Route("/api/workflows/{workflow_id}/cancel", cancel_workflow, methods=["POST"]),
        Route("/api/workflows/{workflow_id}/resume", resume_workflow, methods=["POST"]),
    ]
