"""/healthz (the process answers), /readyz (the database answers and is migrated), /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.sql import WorkflowQueries


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    queries: WorkflowQueries = request.app.state.queries
    try:
        await run_in_threadpool(queries.ping)
    except Exception as exc:
        return JSONResponse(
            {"status": "not ready", "reason": f"database unavailable: {type(exc).__name__}"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    output = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(output, media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
