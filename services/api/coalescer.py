"""Group commit: concurrent single enqueues share one transaction and one INSERT per table.

Profiled under load (docs/benchmarks.md), an API enqueue spent most of its CPU outside the row
itself: a thread-pool hop, a pool checkout, BEGIN, two INSERT round trips and COMMIT, per request.
Requests that arrive while a write is in flight are queued here and written together by the next
one (services/common/dbos_internals.enqueue_many), so under load those costs are paid once per
group; a lone request is written at once, alone, with no added wait. Every request still gets its
202 only after its own row is committed.

Only requests without an Idempotency-Key come here: a keyed request must learn whether its id was
already taken, row by row, which the grouped INSERT cannot tell it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class Coalescer(Generic[T]):
    """Runs `write(items) -> ids` in a worker thread for whatever is queued, at most `writers`
    writes at once and at most `max_group` items a write."""

    def __init__(
        self, write: Callable[[list[T]], list[str]], *, writers: int, max_group: int
    ) -> None:
        self._write = write
        self._writers = writers
        self._max_group = max_group
        self._running = 0
        self._queue: list[tuple[T, asyncio.Future[str]]] = []

    async def submit(self, item: T) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._running < self._writers:
            self._running += 1
            # Kept alive by the loop until done; its outcome reaches each caller's future.
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                group = self._queue[: self._max_group]
                del self._queue[: self._max_group]
                try:
                    ids = await run_in_threadpool(self._write, [item for item, _ in group])
                except BaseException as exc:  # every request of the group fails alike (e.g. 503)
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), workflow_id in zip(group, ids, strict=True):
                    if not future.done():  # a caller that went away cancelled its future
                        future.set_result(workflow_id)
        finally:
            self._running -= 1
