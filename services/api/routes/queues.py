"""/api/queues: per queue, how many wait, how many run, and how old the oldest waiting one is;
of those waiting, how many could start now and what holds back the rest."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.sql import WorkflowQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES


async def list_queues(request: Request) -> Response:
    queries: WorkflowQueries = request.app.state.queries
    stats = await run_in_threadpool(queries.queue_stats, KNOWN_QUEUES)
    now_ms = int(time.time() * 1000)
    return JSONResponse(
        [
            {
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
            for s in stats
        ]
    )


routes = [Route("/api/queues", list_queues, methods=["GET"])]
