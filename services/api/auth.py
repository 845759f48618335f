"""Bearer-token access control for /api/* when API tokens are configured.

EventSource (the page's live streams) cannot send headers, so on the two stream endpoints only
(GET /api/workflows/events, GET /api/workflows/{id}/events) the token may come as the query
parameter `access_token` (RFC 6750 section 2.3). Nowhere else: a token in a URL can end up in
proxy logs, and the streams only read. uvicorn's access log is off (services/api/serve.py).

Tokens come from API_TOKENS / API_TOKENS_FILE (the chart mounts a Secret). Every candidate is
compared with hmac.compare_digest and all of them are always checked, so the time taken says
nothing about which token, or which part of one, was close. A refusal never says why.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.errors import error_response

# The query parameter that may carry the token on the stream endpoints (a name, not a secret).
TOKEN_PARAM = "access_token"  # noqa: S105


def is_stream_path(path: str) -> bool:
    """GET /api/workflows/events and GET /api/workflows/{id}/events."""
    parts = path.split("/")
    return parts[:3] == ["", "api", "workflows"] and parts[-1] == "events" and len(parts) in (4, 5)


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, tokens: tuple[str, ...]) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens]

    def _authorized(self, scope: Scope) -> bool:
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        if not header and scope["method"] == "GET" and is_stream_path(scope["path"]):
            query = scope.get("query_string", b"").decode("latin-1")
            for name, value in parse_qsl(query):
                if name == TOKEN_PARAM:
                    header = b"Bearer " + value.encode("latin-1", "replace")
                    break
        scheme, _, presented = header.partition(b" ")
        ok = False
        for token in self.tokens:
            ok |= hmac.compare_digest(presented.strip(), token)
        return ok and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        protected = scope["type"] == "http" and (
            scope["path"] == "/api" or scope["path"].startswith("/api/")
        )
        if not self.tokens or not protected or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="queue-worker"'},
        )
        await response(scope, receive, send)
