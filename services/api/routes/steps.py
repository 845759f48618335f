"""GET /api/workflows/{id}/steps: a workflow's recorded steps (services/common/steps_sql.py says
what DBOS records and what `attempts` means)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.api.errors import ApiError
from services.api.ops_validation import parse_int_param, unknown_params, workflow_id_param
from services.api.serialize import iso
from services.common.steps_sql import Step, StepQueries

MAX_STEPS_LIMIT = 1000
DEFAULT_STEPS_LIMIT = 500


def step_json(step: Step) -> dict[str, Any]:
    return {
        "function_id": step.function_id,
        "name": step.name,
        "status": step.status,
        "started_at": iso(step.started_at_ms),
        "completed_at": iso(step.completed_at_ms),
        "duration_ms": step.duration_ms,
        "output": step.output,
        "error": step.error,
        "child_workflow_id": step.child_workflow_id,
        "attempts": step.attempts,
        "reexecuted": step.reexecuted,
    }


async def list_steps(request: Request) -> Response:
    workflow_id = workflow_id_param(request)
    unknown_params(request.query_params, {"limit", "after"})
    limit = parse_int_param(
        request.query_params, "limit", 1, MAX_STEPS_LIMIT, default=DEFAULT_STEPS_LIMIT
    )
    after = parse_int_param(request.query_params, "after", 0, 2**31 - 1, default=0)
    queries: StepQueries = request.app.state.step_queries
    page = await run_in_threadpool(lambda: queries.page(workflow_id, after=after, limit=limit + 1))
    if page is None:
        raise ApiError(404, f"no workflow with id {workflow_id[:100]!r}")
    steps = page.steps[:limit]
    headers = {}
    if len(page.steps) > limit:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
        params.append(("after", str(steps[-1].function_id)))
        headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    body = {
        "workflow_id": workflow_id,
        "workflow_status": page.workflow_status,
        "dispatches": page.dispatches,
        "steps": [step_json(s) for s in steps],
    }
    return JSONResponse(body, headers=headers)


routes = [Route("/api/workflows/{workflow_id}/steps", list_steps, methods=["GET"])]
