"""Bearer-token access control for /api/* when API tokens are configured.

Tokens come from API_TOKENS / API_TOKENS_FILE (the chart mounts a Secret). Every candidate is
compared with hmac.compare_digest and all of them are always checked, so the time taken says
nothing about which token, or which part of one, was close. A refusal never says why.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.errors import error_response


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
