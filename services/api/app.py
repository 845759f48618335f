"""The API's Starlette app factory. It talks to the system database through DBOSClient and the
read-only queries in services/common/sql.py; it never imports worker code or launches DBOS.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from dbos import DBOSClient
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from services.api import openapi
from services.api.auth import BearerAuthMiddleware
from services.api.body_limit import BodyLimitMiddleware, BodyTooLarge
from services.api.coalescer import Coalescer
from services.api.errors import EXCEPTION_HANDLERS, error_response
from services.api.http_metrics import HttpMetricsMiddleware, register_http_metrics
from services.api.queue_metrics import QueueCollector, QueueStatsCache
from services.api.routes import (
    events,
    failures,
    health,
    page,
    queues,
    schedules,
    steps,
    workflow_types,
    workflows,
)
from services.api.stream_metrics import StreamCollector
from services.api.streams.broker import Broker
from services.api.version_metrics import VersionCollector, VersionStatsCache
from services.common.failures_sql import FailureQueries
from services.common.names import APP_NAME
from services.common.settings import Settings
from services.common.sql import create_engine
from services.common.steps_sql import StepQueries
from services.common.stream_sql import StreamQueries
from services.common.versions_sql import VersionQueries
from services.common.workflow_types import catalogue

log = logging.getLogger("queue_worker.api")

MAX_BODY_BYTES = 16 * 1024
# Concurrent single enqueues are written in groups (services/api/coalescer.py): at most this many
# group writes at once (each holds one pooled connection), each of at most this many workflows.
ENQUEUE_WRITERS = 2
ENQUEUE_MAX_GROUP = 100
# A batch of 1,000 items at about 100 bytes each, with room to spare.
MAX_BATCH_BODY_BYTES = 1024 * 1024


def make_client(settings: Settings, engine: sa.Engine) -> DBOSClient:
    if engine.dialect.name == "postgresql":
        # One connection pool for DBOS's writes and our reads: API_DB_POOL_SIZE is the whole
        # footprint of an API process on Postgres's max_connections.
        return DBOSClient(
            system_database_engine=engine,
            application_name=APP_NAME,
            retry_connection_errors=False,
            lazy=True,
        )
    # SQLite: DBOS configures its own engine (pragmas, locking) for the file.
    return DBOSClient(
        system_database_url=settings.database_url,
        application_name=APP_NAME,
        # Fail fast (503) instead of blocking a request until the database returns.
        retry_connection_errors=False,
        lazy=True,
    )


async def _body_too_large(_: Request, __: Exception) -> Response:
    return error_response(413, f"request body is larger than {MAX_BODY_BYTES} bytes")


def create_app(settings: Settings, client: DBOSClient | None = None) -> Starlette:
    queries = StreamQueries(
        create_engine(
            settings.database_url,
            pool_size=settings.api_db_pool_size,
            pooler=settings.database_pooler,
        )
    )
    broker = Broker(queries, settings.stream_poll_seconds)
    registry = CollectorRegistry()
    registry.register(QueueCollector(QueueStatsCache(queries, settings.metrics_cache_seconds)))
    registry.register(
        VersionCollector(
            VersionStatsCache(
                VersionQueries(queries.engine),
                settings.metrics_cache_seconds,
                settings.worker_dead_after_seconds,
            )
        )
    )
    registry.register(StreamCollector(broker))
    http_metrics = register_http_metrics(registry)
    declared = catalogue(settings.max_num_steps, settings.default_step_seconds)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.client = client if client is not None else make_client(settings, queries.engine)
        app.state.coalescer = Coalescer(
            functools.partial(workflows.write_group, app.state.client),
            writers=ENQUEUE_WRITERS,
            max_group=ENQUEUE_MAX_GROUP,
        )
        log.info("api ready", extra={"database": settings.redacted_database_url})
        try:
            yield
        finally:
            broker.close()
            app.state.client.destroy()
            queries.engine.dispose()

    app = Starlette(
        routes=[
            # First: its /api/workflows/bulk/... routes must win over /api/workflows/{id}/...
            *failures.routes,
            *steps.routes,
            *events.routes,  # before workflows': /api/workflows/events is not a workflow id
            *workflows.build_routes(declared),
            *workflow_types.routes,
            *schedules.routes,
            *queues.routes,
            *health.routes,
            *openapi.routes,
            *page.routes,
        ],
        middleware=[
            Middleware(HttpMetricsMiddleware, metrics=http_metrics),
            Middleware(BearerAuthMiddleware, tokens=settings.api_tokens),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=MAX_BODY_BYTES,
                # A bulk action names up to 1,000 workflow ids (36-byte UUIDs and longer).
                per_path={
                    "/api/workflows/batch": MAX_BATCH_BODY_BYTES,
                    "/api/workflows/bulk/retry": MAX_BATCH_BODY_BYTES,
                    "/api/workflows/bulk/cancel": MAX_BATCH_BODY_BYTES,
                },
            ),
        ],
        exception_handlers={**EXCEPTION_HANDLERS, BodyTooLarge: _body_too_large},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalogue = declared
    app.state.queries = queries
    app.state.step_queries = StepQueries(queries.engine)
    app.state.failure_queries = FailureQueries(queries.engine)
    app.state.broker = broker
    app.state.metrics_registry = registry
    return app
