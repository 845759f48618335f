"""A minimal asyncio HTTP/1.1 client for the load generator: keep-alive connections, one request at
a time per connection, Content-Length bodies only (all this API sends).

Why not httpx here: its pool does work proportional to the requests waiting on it, so when the API
falls behind and hundreds of requests are in flight the generator itself starts to lag (measured
here: seconds of lateness at 60 req/s on a busy 2-core machine), and the figures would describe the
client rather than the API. This pool costs the same per request whatever is in flight.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


class ProtocolError(Exception):
    """The server's answer was not an HTTP/1.1 response this client understands."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


# uvicorn closes a keep-alive connection after 5 s idle; don't reuse one that is nearly there.
MAX_IDLE_SECONDS = 4.0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    async def exchange(self, request: bytes) -> tuple[Reply, bool]:
        """Send one request, read its response; also says whether the connection stays open."""
        self.writer.write(request)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("closed before any response")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"bad status line {status_line[:100]!r}")
        length = 0
        keep_alive = parts[0] == b"HTTP/1.1"
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection":
                keep_alive = value.strip().lower() != b"close"
            elif name == b"transfer-encoding":
                raise ProtocolError("chunked responses are not supported")
        body = await self.reader.readexactly(length)
        return Reply(int(parts[1]), body), keep_alive

    def close(self) -> None:
        self.writer.close()


class Http1Pool:
    """Connections to one host:port, reused last-in first-out, at most `max_connections`."""

    def __init__(self, host: str, port: int, *, max_connections: int = 500) -> None:
        self.host = host
        self.port = port
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self.connections_opened = 0
        self.stale_retries = 0

    def _pop_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if time.monotonic() - conn.idle_since < MAX_IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def request(
        self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in {"POST", "PUT", "PATCH"}:
            head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        async with self._slots:
            for attempt in (1, 2):
                idle = self._pop_idle() if attempt == 1 else None
                reused = idle is not None
                conn = idle if idle is not None else await self._connect()
                try:
                    reply, keep_alive = await conn.exchange(raw)
                except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
                    conn.close()
                    if not reused:
                        raise
                    # The server closed an idle keep-alive connection as we reused it: send once
                    # more on a fresh one, as any HTTP client does. (Safe for the load's enqueues:
                    # each carries its own Idempotency-Key.)
                    self.stale_retries += 1
                    continue
                except BaseException:
                    conn.close()
                    raise
                if keep_alive:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.close()
                return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
