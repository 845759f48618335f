"""The client's HTTP calls: JSON requests and event streams, on the standard library only."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from services.client.sse import SseEvent, read_events

# A stream that sends nothing, not even the server's heartbeat (15 s by default), this long is
# dead: reconnect.
STREAM_READ_TIMEOUT_SEC = 60.0


class ApiError(Exception):
    """The API answered with an error status; str() is its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ConnectionFailed(Exception):
    """No answer: refused, unreachable, timed out, or not the API."""


def check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--url must be an http:// or https:// URL (got {url!r})")
    return url.rstrip("/")


def workflow_path(workflow_id: str, *rest: str) -> str:
    return "/".join(["/api/workflows", quote(workflow_id, safe=""), *rest])


def _error_message(status: int, body: bytes) -> str:
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"
    return str(message)


class Api:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0) -> None:
        self.base_url = check_base_url(base_url)
        self.token = token
        self.timeout = timeout

    def _open(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http(s) only: check_base_url)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            with exc:
                raise ApiError(exc.code, _error_message(exc.code, exc.read())) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionFailed(f"cannot reach {self.base_url}: {reason}") from None

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON body of a successful answer."""
        with self._open(method, path, body=body, query=query, headers=headers) as resp:
            raw = resp.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ConnectionFailed(f"{self.base_url}{path} did not answer JSON") from None

    def stream(self, path: str, last_event_id: str | None = None) -> Iterator[SseEvent]:
        """Events of one stream until the server ends it. Raises ConnectionFailed when it
        breaks, ApiError when the server refuses it. A 204 (nothing more to send) is no events."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        resp = self._open("GET", path, headers=headers, timeout=STREAM_READ_TIMEOUT_SEC)
        with resp:
            if resp.status == 204:
                return
            content_type = resp.headers.get("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                raise ConnectionFailed(f"{self.base_url}{path} is not an event stream")
            try:
                yield from read_events(resp.readline)
            except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
                raise ConnectionFailed(f"stream from {self.base_url} broke: {exc}") from None
