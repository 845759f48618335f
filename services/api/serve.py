"""`queue-worker api`: run the app under uvicorn, with graceful shutdown on SIGTERM."""

from __future__ import annotations

import socket

import uvicorn

from services.api.app import create_app
from services.common.logs import configure_logging
from services.common.settings import Settings

# In-flight requests get this long after SIGTERM; Kubernetes' default grace period is 30 s.
SHUTDOWN_TIMEOUT_SEC = 10


class _Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn waits for open responses before the app's lifespan shutdown runs, and a live
        # stream never ends by itself: end them first (clients reconnect to another replica).
        broker = getattr(getattr(self.config.app, "state", None), "broker", None)
        if broker is not None:
            broker.close()
        await super().shutdown(sockets)


def serve_api(settings: Settings, *, host: str, port: int) -> int:
    configure_logging(settings.log_level, settings.log_format, "api")
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT_SEC,
        server_header=False,
    )
    server = _Server(config)
    server.run()
    # uvicorn returns without raising when it cannot bind; report that as a failure.
    return 0 if server.started else 1
