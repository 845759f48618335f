"""`queue-worker api`: run the app under uvicorn, with graceful shutdown on SIGTERM."""

from __future__ import annotations

import uvicorn

from services.api.app import create_app
from services.common.logs import configure_logging
from services.common.settings import Settings

# In-flight requests get this long after SIGTERM; Kubernetes' default grace period is 30 s.
SHUTDOWN_TIMEOUT_SEC = 10


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
    server = uvicorn.Server(config)
    server.run()
    # uvicorn returns without raising when it cannot bind; report that as a failure.
    return 0 if server.started else 1
