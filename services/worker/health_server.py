"""The worker's small HTTP server: /healthz, /readyz and /metrics on --metrics-port.

It runs uvicorn in a background thread so the main thread stays free for signal handling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)


def build_health_app(
    registry: CollectorRegistry, is_ready: Callable[[], tuple[bool, str]]
) -> Starlette:
    def healthz(_: Request) -> Response:
        # Liveness: the process answers. Database trouble is readiness, not a reason to restart.
        return JSONResponse({"status": "ok"})

    def readyz(_: Request) -> Response:
        ready, reason = is_ready()
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "reason": reason},
            status_code=200 if ready else 503,
        )

    def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )


class HealthServer:
    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="health-server", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        waited = 0.0
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the metrics server failed to start (is the port in use?)")
            if waited > timeout:
                raise RuntimeError("the metrics server did not start in time")
            threading.Event().wait(0.05)
            waited += 0.05

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
