"""HTTP request metrics for the API, labelled by handler (not raw path: ids would explode them)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No `_created` series: they double the series count and no dashboard or rule reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Anything else is counted as "other": a client must not be able to invent label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    duration: Histogram


def register_http_metrics(registry: CollectorRegistry) -> HttpMetrics:
    return HttpMetrics(
        requests=Counter(
            "queue_worker_http_requests_total",
            "HTTP requests served by the API, by handler, method and status code.",
            ["handler", "method", "status"],
            registry=registry,
        ),
        duration=Histogram(
            "queue_worker_http_request_duration_seconds",
            "Time to serve an HTTP request, by handler.",
            ["handler"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        ),
    )


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            endpoint = scope.get("endpoint")
            # The router writes the matched endpoint into the shared scope; /static is a Mount.
            handler = getattr(endpoint, "__name__", None) or (
                "static" if scope["path"].startswith("/static/") else "unmatched"
            )
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(handler, method, str(status)).inc()
            self.metrics.duration.labels(handler).observe(time.perf_counter() - started)
