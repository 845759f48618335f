"""A Server-Sent Events reader for a byte stream (the text/event-stream format, as browsers
parse it: `id:`, `event:`, `data:` fields, comment lines, a blank line dispatches)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    name: str  # "message" unless the server named it
    data: str
    id: str | None  # the id in force when it arrived (Last-Event-ID for a reconnect)


def read_events(readline: Callable[[], bytes]) -> Iterator[SseEvent]:
    """Events until the stream ends; heartbeats (comment lines) are consumed silently."""
    last_id: str | None = None
    name = ""
    data: list[str] = []
    while True:
        raw = readline()
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(name or "message", "\n".join(data), last_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id" and "\x00" not in value:
            last_id = value
