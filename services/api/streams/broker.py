"""One database poller per API process, serving every open stream.

A single asyncio task runs while at least one topic exists (someone listens, or listened a
moment ago): each tick it reads, in one worker thread, every watched workflow (one statement),
each distinct list query (one statement each) and, every QUEUES_EVERY_SEC, the queue counts,
then fans the changes out to the subscribers on the event loop. A hundred pages showing the same
list cost what one costs. The task exits when the last topic goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool

from services.api.routes.queues import queue_json
from services.api.serialize import workflow_json
from services.api.streams.topics import (
    Event,
    ListKey,
    ListTopic,
    Subscription,
    Topic,
    WorkflowTopic,
    workflow_event,
)
from services.api.validation import encode_cursor
from services.common.stream_sql import StreamQueries
from services.common.workflow_types import QUEUES as KNOWN_QUEUES

log = logging.getLogger("queue_worker.api")

QUEUES_EVERY_SEC = 2.0
# A topic nobody listens to is kept this long, so a client reconnecting at once resumes from
# its Last-Event-ID instead of getting a snapshot.
LINGER_SEC = 10.0
MAX_BACKOFF_SEC = 5.0


@dataclass(frozen=True)
class _Reads:
    workflows: dict[str, dict[str, Any]]
    lists: dict[ListKey, tuple[list[dict[str, Any]], str | None]]
    queues: list[dict[str, Any]] | None


def next_page_url(key: ListKey, last_created_at_ms: int, last_id: str) -> str:
    params: list[tuple[str, str]] = [("limit", str(key.limit))]
    for name, values in (("status", key.statuses), ("name", key.names), ("queue", key.queue_names)):
        if values:
            params.append((name, ",".join(values)))
    params.append(("cursor", encode_cursor(last_created_at_ms, last_id)))
    return f"/api/workflows?{urlencode(params)}"


class Broker:
    def __init__(self, queries: StreamQueries, poll_sec: float) -> None:
        self.queries = queries
        self.poll_sec = poll_sec
        self.boot = secrets.token_hex(4)  # list event ids are only meaningful to this process
        self.ticks = 0
        self._workflows: dict[str, WorkflowTopic] = {}
        self._lists: dict[ListKey, ListTopic] = {}
        self._queues: Event | None = None
        self._queues_at = -1e18
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def subscriber_count(self) -> int:
        topics: list[Topic] = [*self._workflows.values(), *self._lists.values()]
        return sum(len(t.subscribers) for t in topics)

    # -- subscribing (called by the routes, on the event loop) -------------------------------

    def subscribe_workflow(self, workflow_id: str, current: dict[str, Any]) -> Subscription:
        """`current` is the row the route just read (it answered 404 otherwise)."""
        topic = self._workflows.get(workflow_id)
        if topic is None:
            topic = self._workflows[workflow_id] = WorkflowTopic(workflow_id=workflow_id)
            topic.current = workflow_event(current)
        return self._join(topic, Subscription())

    def subscribe_list(self, key: ListKey, last_event_id: str | None) -> Subscription:
        sub = Subscription()
        topic = self._lists.get(key)
        if topic is None:
            topic = self._lists[key] = ListTopic(key=key, boot=self.boot)
        resumed = topic.since(last_event_id) if last_event_id else None
        if resumed is not None:
            sub.last_id = last_event_id
            for event in resumed:
                sub.send(event)
        elif topic.polled:
            sub.send(topic.snapshot())
        else:
            topic.waiting.add(sub)
        if self._queues is not None:
            sub.send(self._queues)
        else:
            self._queues_at = -1e18  # fetch them on the next tick
        return self._join(topic, sub)

    def _join(self, topic: Topic, sub: Subscription) -> Subscription:
        topic.subscribers.add(sub)
        topic.idle_since = None
        if self._closed:
            sub.close()
        elif not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="stream-poller")
        self._wake.set()  # a new listener gets its first poll now, not a tick later
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        now = asyncio.get_running_loop().time()
        for topic in [*self._workflows.values(), *self._lists.values()]:
            if sub in topic.subscribers:
                topic.subscribers.discard(sub)
                if isinstance(topic, ListTopic):
                    topic.waiting.discard(sub)
                if not topic.subscribers:
                    topic.idle_since = now

    def close(self) -> None:
        """End every stream (the server is shutting down) and stop polling."""
        self._closed = True
        for topic in [*self._workflows.values(), *self._lists.values()]:
            for sub in topic.subscribers:
                sub.close()
        if self._task is not None:
            self._task.cancel()

    # -- polling -------------------------------------------------------------------------------

    def _expire(self) -> None:
        now = asyncio.get_running_loop().time()
        for table in (self._workflows, self._lists):
            for key, topic in list(table.items()):
                idle = topic.idle_since
                # Workflow event ids are derived from state, so those topics need no linger.
                linger = LINGER_SEC if isinstance(topic, ListTopic) else 0.0
                if not topic.subscribers and idle is not None and now - idle >= linger:
                    del table[key]  # type: ignore[arg-type]

    def _read(self, ids: list[str], keys: list[ListKey], want_queues: bool) -> _Reads:
        """All of one tick's statements, in one worker thread."""
        q = self.queries
        workflows = {
            r.workflow_id: workflow_json(r, detail=True)
            for r in (q.rows_by_ids(ids) if ids else [])
        }
        lists: dict[ListKey, tuple[list[dict[str, Any]], str | None]] = {}
        for key in keys:
            q.statements += 1
            rows = q.list_page(
                limit=key.limit + 1,
                statuses=list(key.statuses) if key.statuses else None,
                names=list(key.names) if key.names else None,
                queue_names=list(key.queue_names) if key.queue_names else None,
                after=key.after,
            )
            next_url = None
            if len(rows) > key.limit:
                rows = rows[: key.limit]
                next_url = next_page_url(key, rows[-1].created_at_ms, rows[-1].workflow_id)
            lists[key] = ([workflow_json(r) for r in rows], next_url)
        queues = None
        if want_queues:
            q.statements += 2  # the counts and the registered queues
            now_ms = int(time.time() * 1000)
            queues = [queue_json(s, now_ms) for s in q.queue_stats(KNOWN_QUEUES)]
        return _Reads(workflows, lists, queues)

    async def tick(self) -> None:
        self._expire()
        ids = list(self._workflows)
        keys = list(self._lists)
        now = time.monotonic()
        want_queues = bool(keys) and now - self._queues_at >= QUEUES_EVERY_SEC
        if not ids and not keys:
            return
        reads = await run_in_threadpool(self._read, ids, keys, want_queues)
        self.ticks += 1
        for workflow_id in ids:
            topic = self._workflows.get(workflow_id)
            if topic is not None:
                topic.update(reads.workflows.get(workflow_id))
        for key, (rows, next_url) in reads.lists.items():
            list_topic = self._lists.get(key)
            if list_topic is not None:
                list_topic.update(rows, next_url)
        if reads.queues is not None:
            self._queues_at = now
            if self._queues is None or self._queues.data != reads.queues:
                self._queues = Event(reads.queues, None, "queues")
                for list_topic in self._lists.values():
                    for sub in list_topic.subscribers:
                        sub.send(self._queues)

    async def _run(self) -> None:
        failures = 0
        while not self._closed and (self._workflows or self._lists):
            self._wake.clear()
            try:
                await self.tick()
                failures = 0
            except Exception as exc:  # the database may be away: keep the streams, retry
                failures += 1
                log.warning("stream poll failed", extra={"error": type(exc).__name__})
            delay = min(MAX_BACKOFF_SEC, self.poll_sec * 2**failures) if failures else self.poll_sec
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._expire()
