"""/api/queues: per queue, how many wait, how many run, and how old the oldest waiting one is;
of those waiting, how many could start now and what holds back the rest."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.sql import QueueStats, WorkflowQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES


def queue_json(s: QueueStats, now_ms: int) -> dict[str, Any]:
    """One queue as GET /api/queues and the list stream's `queues` event show it."""
    return {
        "queue_name": s.name,
        "enqueued": s.enqueued,
        "pending": s.pending,
        "oldest_enqueued_age_seconds": round(s.oldest_enqueued_age_sec(now_ms), 3),
        "worker_concurrency": s.worker_concurrency,
        "global_concurrency": s.global_concurrency,
        "polling_interval_seconds": s.polling_interval_sec,
        "registered": s.registered,
        "runnable": s.runnable,
        "held": dict(s.held),
    }


async def list_queues(request: Request) -> Response:
    queries: WorkflowQueries = request.app.state.queries
    stats = await run_in_threadpool(queries.queue_stats, KNOWN_QUEUES)
    now_ms = int(time.time() * 1000)
    return JSONResponse([queue_json(s, now_ms) for s in stats])


routes = [Route("/api/queues", list_queues, methods=["GET"])]
