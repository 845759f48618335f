"""Failures and the actions on them: GET /api/dead-letter, POST /api/workflows/{id}/retry and
/fork, POST /api/workflows/bulk/retry and /bulk/cancel.

Bulk actions take {"workflow_ids": [...]} or {"filter": {...}}, act on at most MAX_BULK
workflows per call (oldest first; `more` says a filter matched more: repeat the call), answer
{"dry_run": true} with what they would do, and log one audit line per call (who, what, how many).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any
from urllib.parse import urlencode

from dbos import DBOSClient
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.api import actions
from services.api.errors import ApiError
from services.api.ops_validation import (
    MAX_BULK,
    BulkRequest,
    parse_bulk,
    parse_dead_letter_query,
    parse_start_step,
    workflow_id_param,
)
from services.api.serialize import dead_letter_json
from services.api.validation import encode_cursor, parse_json_object
from services.common.failures_sql import (
    CANCELLABLE_STATUSES,
    DEAD_STATUSES,
    RETRYABLE_STATUSES,
    FailureQueries,
    KnownWorkflow,
)
from services.common.steps_sql import StepQueries

log = logging.getLogger("queue_worker.api.audit")


def _deps(request: Request) -> tuple[DBOSClient, FailureQueries, StepQueries]:
    state = request.app.state
    return state.client, state.failure_queries, state.step_queries


async def _json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "Content-Type must be application/json")
    return parse_json_object(await request.body())


async def _known(queries: FailureQueries, workflow_id: str) -> KnownWorkflow:
    found = await run_in_threadpool(queries.by_ids, [workflow_id])
    if workflow_id not in found:
        raise ApiError(404, f"no workflow with id {workflow_id[:100]!r}")
    return found[workflow_id]


def _who(request: Request) -> str:
    """Who asked, for the audit line: a short fingerprint of the bearer token (never the token)
    and the client address."""
    auth = request.headers.get("authorization", "")
    token = auth.partition(" ")[2].strip()
    who = f"token:{hashlib.sha256(token.encode()).hexdigest()[:8]}" if token else "anonymous"
    host = request.client.host if request.client else "unknown"
    return f"{who}@{host}"


async def dead_letter(request: Request) -> Response:
    _, queries, _ = _deps(request)
    q = parse_dead_letter_query(request.query_params)
    rows = await run_in_threadpool(lambda: queries.page(q.filter, limit=q.limit + 1, after=q.after))
    headers = {}
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params.append(("cursor", encode_cursor(rows[-1].created_at_ms, rows[-1].workflow_id)))
        headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return JSONResponse([dead_letter_json(r) for r in rows], headers=headers)


async def retry_workflow(request: Request) -> Response:
    client, queries, _ = _deps(request)
    wf = await _known(queries, workflow_id_param(request))
    outcome = await run_in_threadpool(actions.do_retry, client, queries, wf)
    if outcome.outcome == "skipped":
        raise ApiError(409, outcome.reason or "this workflow cannot be retried")
    who = _who(request)
    log.info(
        f"retry {wf.workflow_id}: {outcome.outcome} as {outcome.retry_workflow_id} by {who}",
        extra={"action": "retry", "who": _who(request), **actions.outcome_json(outcome)},
    )
    body = actions.outcome_json(outcome)
    body["workflow_id"] = outcome.retry_workflow_id
    body["retried"] = wf.workflow_id
    return JSONResponse(body, status_code=202)


async def fork_workflow(request: Request) -> Response:
    client, queries, steps = _deps(request)
    workflow_id = workflow_id_param(request)
    start_step = parse_start_step(await _json_body(request))
    wf = await _known(queries, workflow_id)
    summary = await run_in_threadpool(steps.summary, workflow_id)
    if summary is None:
        raise ApiError(404, f"no workflow with id {workflow_id[:100]!r}")
    # Steps before start_step are replayed from their records, so they must exist: the highest
    # start is one past the last recorded step (run everything after it again).
    highest = summary.last_function_id + 1
    if start_step > highest:
        raise ApiError(
            422,
            f"start_step must be from 1 to {highest}: the workflow has "
            f"{summary.last_function_id} recorded step(s)",
            field="start_step",
        )
    new_id = await run_in_threadpool(actions.fork, client, queries, wf, start_step)
    log.info(
        f"fork {workflow_id} from step {start_step} as {new_id} by {_who(request)}",
        extra={
            "action": "fork",
            "who": _who(request),
            "workflow_id": workflow_id,
            "start_step": start_step,
            "new_workflow_id": new_id,
        },
    )
    return JSONResponse(
        {"workflow_id": new_id, "forked_from": workflow_id, "start_step": start_step},
        status_code=202,
        headers={"Location": f"/api/workflows/{new_id}"},
    )


def _select(
    queries: FailureQueries, req: BulkRequest, statuses: tuple[str, ...]
) -> tuple[list[KnownWorkflow], list[dict[str, Any]], int, bool]:
    """The workflows a bulk call acts on, what it skips, how many matched, and whether more do."""
    if req.workflow_ids is not None:
        found = queries.by_ids(req.workflow_ids)
        chosen, skipped = [], []
        for wid in req.workflow_ids:
            wf = found.get(wid)
            if wf is None:
                skipped.append({"workflow_id": wid, "reason": "no such workflow"})
            elif wf.status not in statuses:
                skipped.append({"workflow_id": wid, "reason": f"workflow is {wf.status}"})
            else:
                chosen.append(wf)
        return chosen, skipped, len(req.workflow_ids), False
    assert req.filter is not None
    picked = queries.select(req.filter, limit=req.limit)
    found = queries.by_ids([wid for wid, _ in picked])
    chosen = [found[wid] for wid, _ in picked if wid in found]
    matched = queries.count(req.filter) if len(picked) == req.limit else len(picked)
    return chosen, [], matched, matched > len(picked)


def _bulk_retry(client: DBOSClient, queries: FailureQueries, req: BulkRequest) -> dict[str, Any]:
    chosen, skipped, matched, more = _select(queries, req, RETRYABLE_STATUSES)
    step = actions.plan_retry if req.dry_run else None
    results = []
    for wf in chosen:
        outcome = step(queries, wf) if step else actions.do_retry(client, queries, wf)
        if outcome.outcome == "skipped":
            skipped.append({"workflow_id": wf.workflow_id, "reason": outcome.reason})
        else:
            results.append(actions.outcome_json(outcome))
    return _bulk_body("retry", req, matched, more, results, skipped)


def _bulk_cancel(client: DBOSClient, queries: FailureQueries, req: BulkRequest) -> dict[str, Any]:
    chosen, skipped, matched, more = _select(queries, req, CANCELLABLE_STATUSES)
    ids = [wf.workflow_id for wf in chosen]
    if not req.dry_run:
        actions.cancel_many(client, ids)
    results = [{"workflow_id": i, "outcome": "cancelled"} for i in ids]
    return _bulk_body("cancel", req, matched, more, results, skipped)


def _bulk_body(
    action: str,
    req: BulkRequest,
    matched: int,
    more: bool,
    results: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "action": action,
        "dry_run": req.dry_run,
        "matched": matched,
        "count": len(results),
        "workflow_ids": [r["workflow_id"] for r in results],
        "results": results,
        "skipped": skipped,
        "more": more,
        "max_per_call": MAX_BULK,
    }


async def _bulk(request: Request, action: str) -> Response:
    client, queries, _ = _deps(request)
    body = await _json_body(request)
    if action == "retry":
        # By filter, already forked workflows are left out unless asked for: a repeated call
        # then moves on through the backlog instead of meeting what it retried last time.
        req = parse_bulk(body, RETRYABLE_STATUSES, DEAD_STATUSES, default_forked=False)
        out = await run_in_threadpool(_bulk_retry, client, queries, req)
    else:
        req = parse_bulk(body, CANCELLABLE_STATUSES, CANCELLABLE_STATUSES)
        out = await run_in_threadpool(_bulk_cancel, client, queries, req)
    who = _who(request)
    selection = (
        {"workflow_ids": len(req.workflow_ids)}
        if req.workflow_ids is not None
        else {"filter": req.filter.describe() if req.filter else {}}
    )
    log.info(
        f"bulk {action}{' (dry run)' if req.dry_run else ''} by {who}: matched {out['matched']}, "
        f"acted on {out['count']}, skipped {len(out['skipped'])}, more {out['more']}",
        extra={
            "action": f"bulk_{action}",
            "who": who,
            "dry_run": req.dry_run,
            "matched": out["matched"],
            "count": out["count"],
            "skipped": len(out["skipped"]),
            "more": out["more"],
            **selection,
        },
    )
    return JSONResponse(out, status_code=200 if req.dry_run else 202)


async def bulk_retry(request: Request) -> Response:
    return await _bulk(request, "retry")


async def bulk_cancel(request: Request) -> Response:
    return await _bulk(request, "cancel")


# Before the workflow routes: /api/workflows/bulk/cancel would otherwise match
# /api/workflows/{workflow_id}/cancel with the id "bulk".
routes = [
    Route("/api/dead-letter", dead_letter, methods=["GET"]),
    Route("/api/workflows/bulk/retry", bulk_retry, methods=["POST"]),
    Route("/api/workflows/bulk/cancel", bulk_cancel, methods=["POST"]),
    Route("/api/workflows/{workflow_id}/retry", retry_workflow, methods=["POST"]),
    Route("/api/workflows/{workflow_id}/fork", fork_workflow, methods=["POST"]),
]
