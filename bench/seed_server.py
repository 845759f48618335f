"""A minimal server with the seed's enqueue pattern, as the baseline for the enqueue benchmark.

Like the DBOS queue-worker example's web server: a synchronous endpoint (run on the framework's
thread pool, as FastAPI runs a `def` endpoint) that ignores the body and calls
`DBOSClient.enqueue` with the seed's options (default pickle serialization, default client pool).
It runs under the same uvicorn as our API, with the same settings (no access log).

    DBOS_SYSTEM_DATABASE_URL=... python -m bench.seed_server --port 8001
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from dbos import DBOSClient, EnqueueOptions
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.names import DEMO_WORKFLOW, WORKFLOW_QUEUE


def create_app(database_url: str) -> Starlette:
    client = DBOSClient(system_database_url=database_url)

    def enqueue_workflow(_: Request) -> JSONResponse:
        options: EnqueueOptions = {"queue_name": WORKFLOW_QUEUE, "workflow_name": DEMO_WORKFLOW}
        num_steps = 10
        client.enqueue(options, num_steps)
        return JSONResponse({"status": "enqueued"})

    def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    # Starlette runs a plain `def` endpoint in its thread pool, exactly as FastAPI does.
    return Starlette(
        routes=[
            Route("/workflows", enqueue_workflow, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(os.environ["DBOS_SYSTEM_DATABASE_URL"])
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, access_log=False, server_header=False
    )


if __name__ == "__main__":
    main()
