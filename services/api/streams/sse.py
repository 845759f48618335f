"""Server-Sent Events framing and the streaming response for one subscription.

Proxies must neither buffer nor time out a stream: the response says `Cache-Control: no-cache`
and `X-Accel-Buffering: no` (nginx), starts with a comment so the headers and first bytes leave
at once, and sends a comment line every heartbeat interval while nothing else happens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse

from services.api.streams.topics import Event, Subscription

# How long a browser waits before reconnecting after a dropped stream (the SSE `retry:` field).
RETRY_MS = 2000

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def frame(event: Event) -> bytes:
    lines = []
    if event.id is not None:
        lines.append(f"id: {event.id}")
    if event.name is not None:
        lines.append(f"event: {event.name}")
    # One line of compact JSON: JSON text never holds a raw newline.
    lines.append("data: " + json.dumps(event.data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


async def _events(
    subscribe: Callable[[], Subscription],
    heartbeat_sec: float,
    done: Callable[[Subscription], None],
) -> AsyncIterator[bytes]:
    # Subscribed here, not by the route: a generator that never starts (the client left before
    # the headers went out) never runs its `finally`, and would leave a subscriber behind.
    sub = subscribe()
    try:
        yield f": stream open\nretry: {RETRY_MS}\n\n".encode()
        while True:
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=heartbeat_sec)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if event is None:  # closed by the broker: shutdown, or this client fell behind
                return
            yield frame(event)
            if event.last:
                return
    finally:
        done(sub)


def event_stream(
    subscribe: Callable[[], Subscription],
    heartbeat_sec: float,
    done: Callable[[Subscription], None],
) -> StreamingResponse:
    return StreamingResponse(
        _events(subscribe, heartbeat_sec, done),
        media_type="text/event-stream; charset=utf-8",
        headers=HEADERS,
    )
