"""What a live stream is about (a topic), its subscribers, and how a fresh poll becomes events.

A topic is one workflow, or one list query (the same parameters as GET /api/workflows). Every
subscriber of a topic shares its state, so a poll's cost depends on the topics, not on the
number of open streams. Everything here runs on the event loop; only the poller's reads run in a
thread (services/api/streams/broker.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# A workflow in one of these states will not change again by itself: its stream ends.
TERMINAL = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})

# A subscriber this far behind (a stalled client) is dropped; it reconnects and resumes.
SUBSCRIBER_BACKLOG = 64
# List deltas kept per topic for Last-Event-ID resumes; older ids get a snapshot instead.
LIST_HISTORY = 256


@dataclass(frozen=True)
class Event:
    data: dict[str, Any] | list[Any]
    id: str | None = None  # None: the client's Last-Event-ID stays what it was
    name: str | None = None  # the SSE `event:` field; None is the default "message"
    last: bool = False  # the stream ends after this event


def state_id(data: dict[str, Any]) -> str:
    """A workflow event's id is derived from its content, so any API replica can tell whether a
    reconnecting client already has the current state."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return digest[:20]


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG)
    )
    last_id: str | None = None  # the id of the last event it was sent
    closed: bool = False

    def send(self, event: Event) -> None:
        if self.closed or (event.id is not None and event.id == self.last_id):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close()
            return
        if event.id is not None:
            self.last_id = event.id

    def close(self) -> None:
        """End the stream (shutdown, a stalled client, a deleted workflow)."""
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():  # make room for the end marker
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass(frozen=True)
class ListKey:
    """A normalized list query: equal queries share one topic and one statement per poll."""

    limit: int
    statuses: tuple[str, ...] | None
    names: tuple[str, ...] | None
    queue_names: tuple[str, ...] | None
    after: tuple[int, str] | None


@dataclass(eq=False)
class Topic:
    subscribers: set[Subscription] = field(default_factory=set)
    # loop.time() when the last subscriber left; the topic lingers a little so a client that
    # reconnects at once still finds its history.
    idle_since: float | None = None


@dataclass(eq=False)
class WorkflowTopic(Topic):
    workflow_id: str = ""
    current: Event | None = None

    def update(self, data: dict[str, Any] | None) -> None:
        """Fan out the workflow's fresh state (None: it no longer exists)."""
        if data is None:
            event = Event({"workflow_id": self.workflow_id, "deleted": True}, None, "deleted", True)
        else:
            event = workflow_event(data)
            if self.current is not None and event.id == self.current.id:
                return
        self.current = event
        for sub in list(self.subscribers):
            sub.send(event)


def workflow_event(data: dict[str, Any]) -> Event:
    return Event(data, state_id(data), None, data.get("workflow_status") in TERMINAL)


@dataclass(eq=False)
class ListTopic(Topic):
    key: ListKey | None = None
    boot: str = ""
    seq: int = 0
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    next_url: str | None = None
    polled: bool = False
    history: deque[tuple[int, Event]] = field(default_factory=lambda: deque(maxlen=LIST_HISTORY))
    waiting: set[Subscription] = field(default_factory=set)  # want a snapshot after a poll

    def event_id(self) -> str:
        return f"{self.boot}-{self.seq}"

    def snapshot(self) -> Event:
        data = {
            "snapshot": True,
            "workflows": [self.rows[i] for i in self.order],
            "removed": [],
            "order": self.order,
            "next": self.next_url,
        }
        return Event(data, self.event_id(), "list")

    def since(self, last_event_id: str) -> list[Event] | None:
        """The deltas after `last_event_id`, or None if they cannot be told (another replica,
        a restart, or older than the history): the caller then sends a snapshot."""
        boot, _, raw = last_event_id.rpartition("-")
        if boot != self.boot or not raw.isdigit() or not self.polled:
            return None
        seq = int(raw)
        if seq == self.seq:
            return []
        kept = [(s, e) for s, e in self.history if s > seq]
        if seq > self.seq or not kept or kept[0][0] != seq + 1:
            return None
        return [e for _, e in kept]

    def update(self, rows: list[dict[str, Any]], next_url: str | None) -> None:
        new_rows = {r["workflow_id"]: r for r in rows}
        new_order = list(new_rows)
        changed = [r for i, r in new_rows.items() if self.rows.get(i) != r]
        removed = [i for i in self.rows if i not in new_rows]
        first = not self.polled
        self.polled = True
        if first or changed or removed or new_order != self.order or next_url != self.next_url:
            self.rows, self.order, self.next_url = new_rows, new_order, next_url
            self.seq += 1
            delta = {
                "snapshot": False,
                "workflows": changed,
                "removed": removed,
                "order": new_order,
                "next": next_url,
            }
            event = Event(delta, self.event_id(), "list")
            self.history.append((self.seq, event))
            for sub in list(self.subscribers - self.waiting):
                sub.send(event)
        for sub in self.waiting:
            sub.send(self.snapshot())
        self.waiting.clear()
