"""Errors as JSON: {"error": {"code": ..., "message": ...}} with the right status, never a 5xx for
bad input. A database outage is a 503 with Retry-After, so clients and load balancers back off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

log = logging.getLogger("queue_worker.api")

RETRY_AFTER_SEC = 5

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class _ErrorJSONResponse(JSONResponse):
    """Error bodies echo what the client sent (a field name, a value), which may hold a lone
    surrogate ("\\ud800" is valid JSON but not encodable as UTF-8): escape every non-ASCII
    character so rendering the refusal can never fail into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class ApiError(Exception):
    """`field` names the offending field (e.g. "num_steps", "workflows[3].input.num_steps") and
    `index` the offending batch item; both are sent in the error body when set."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _HTTP_CODES.get(status, "error")
        self.field = field
        self.index = index


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    field: str | None = None,
    index: int | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code or _HTTP_CODES.get(status, "error"), "message": message}
    if field is not None:
        error["field"] = field
    if index is not None:
        error["index"] = index
    body: dict[str, Any] = {"error": error}
    return _ErrorJSONResponse(body, status_code=status, headers=headers)


async def api_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, code=exc.code, field=exc.field, index=exc.index)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette's Allow names only the first route that matched the path; one path served by
        # two routes (GET and POST /api/workflows) must list the methods of both.
        matching = [
            route
            for route in request.app.router.routes
            if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE
        ]
        # A fixed path (POST /api/workflows/demo) names its own resource: a templated route that
        # also matches it (GET /api/workflows/{workflow_id}) does not add methods to it.
        fixed = [r for r in matching if not getattr(r, "param_convertors", None)]
        methods = {method for route in (fixed or matching) for method in route.methods}
        if methods:
            headers["Allow"] = ", ".join(sorted(methods))
    return error_response(exc.status_code, message, headers=headers)


async def client_disconnect_handler(_: Request, __: Exception) -> Response:
    # The client hung up before sending its whole body: nobody will read an answer, and it is not
    # a server error (nginx's 499 "client closed request" keeps it out of 5xx rates and logs).
    return Response(status_code=499)


async def database_error_handler(request: Request, exc: Exception) -> Response:
    log.warning(
        "database unavailable",
        extra={"path": request.url.path, "error": type(exc).__name__, "detail": str(exc)[:300]},
    )
    return error_response(
        503,
        "the database is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SEC)},
    )


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    OperationalError: database_error_handler,
    PoolTimeoutError: database_error_handler,
    InterfaceError: database_error_handler,
    ClientDisconnect: client_disconnect_handler,
}
