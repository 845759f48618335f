"""Errors as JSON: {"error": {"code": ..., "message": ...}} with the right status, never a 5xx for
bad input. A database outage is a 503 with Retry-After, so clients and load balancers back off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _HTTP_CODES.get(status, "error")


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "error": {"code": code or _HTTP_CODES.get(status, "error"), "message": message}
    }
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, code=exc.code)


async def http_exception_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return error_response(exc.status_code, message, headers=exc.headers)


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
}
