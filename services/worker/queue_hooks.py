"""How waking the queue thread uses dbos private internals (the names themselves come through the
one door, services/common/dbos_internals.py).

DBOS 3.4 has no public hook to wake its queue thread between polls, and no way to learn that a
dequeued workflow finished. Each use below says why it is needed; each was read in, and checked
against, dbos 3.4.0 (`.venv/lib/python3.11/site-packages/dbos/_queue.py`, `_core.py`).
`problems()` re-checks every assumption against the installed dbos; `install()` refuses (and the
worker falls back to plain polling, logging why) if any fails, and
tests/unit/test_dbos_internals.py fails loudly, naming the one that moved, on a dbos upgrade.

What is changed, and only in this process:
1. `dbos._queue.queue_worker_thread` (one thread per queue, spawned by `dbos._queue.queue_thread`,
   which looks the function up by its module-global name at spawn time) is wrapped so the thread
   receives a WakeableStop (services/worker/wake.py) in place of DBOS's stop event. The thread
   uses that event only through `is_set()` and `wait(timeout=polling_interval)`; a ring makes
   `wait` return False ("not stopping"), which is exactly what the timer does. So a wake-up is
   DBOS's own poll, on DBOS's own thread: never a second dequeue racing it.
2. `dbos._queue.execute_dequeued_workflow` (called by name, in the queue thread, once per claimed
   workflow) is wrapped to learn when a dequeued workflow finishes (its Future), to ring the
   queue's bell then ("a slot is free").
3. `DBOS._active_workflows_set` (a `dbos._core.ActiveWorkflowById`) is replaced by a subclass
   that also counts claims not yet registered. DBOS counts a claimed workflow against
   worker_concurrency only once its executor thread has started and called `add()`; until then
   the next poll does not see it ("the local concurrency count lags until it registers", in
   execute_dequeued_workflow). With a poll once a second that lag rarely matters; with a poll the
   moment a slot frees, it let a worker run up to 18 at concurrency 10 (bench/wake.py). The claim
   is counted from dispatch (synchronously in the queue thread, before its next poll) until the
   workflow registers or its Future completes, so the count is never lower than DBOS's and never
   lower than the truth. Coroutine (`async def`) workflows return no Future: they keep DBOS's own
   accounting and refill at the next timer poll.
"""

from __future__ import annotations

import inspect
import threading
import types
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from importlib.metadata import version
from typing import Any

# The dbos internals wrapped here come through the one door (services/common/dbos_internals.py):
# (a) the queue thread and its dispatch; (b) the in-process registry DBOS counts
# worker_concurrency from, and the handle type of a dequeued synchronous workflow (its Future).
from services.common.dbos_internals import ActiveWorkflowById, WorkflowHandleFuture, dbos_queue
from services.worker.wake import SLOT, Wakeups

CHECKED_VERSION = "3.4."

QueueBucket = tuple[str | None, str | None]


def _params(func: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(func).parameters)


def _names_in(code: types.CodeType) -> set[str]:
    """Global/attribute names a function's code uses, nested functions included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_in(const)
    return names


def problems() -> list[str]:
    """Each assumption this module makes about dbos internals that does not hold (empty: none)."""
    found: list[str] = []
    installed = version("dbos")
    if not installed.startswith(CHECKED_VERSION):
        found.append(f"dbos {installed} is installed; this module was checked against 3.4.x")
    qwt = _ORIGINAL_QUEUE_WORKER_THREAD
    if qwt is None or _params(qwt) != ["stop_event", "dbos", "queue"]:
        found.append("dbos._queue.queue_worker_thread(stop_event, dbos, queue) changed or moved")
    else:
        src = inspect.getsource(qwt)
        if "stop_event.wait(timeout=" not in src:
            found.append("queue_worker_thread no longer waits on stop_event.wait(timeout=...)")
        if "execute_dequeued_workflow" not in _names_in(qwt.__code__):
            found.append("queue_worker_thread no longer dispatches via execute_dequeued_workflow")
    manager = getattr(dbos_queue, "queue_thread", None)
    if manager is None or "queue_worker_thread" not in _names_in(manager.__code__):
        found.append("dbos._queue.queue_thread no longer spawns queue_worker_thread by name")
    edw = _ORIGINAL_EXECUTE_DEQUEUED
    if edw is None or _params(edw) != ["dbos", "status", "owner_xid"]:
        found.append("dbos._queue.execute_dequeued_workflow(dbos, status, owner_xid) changed")
    for name, params in {
        "add": ["self", "key", "queue_name", "queue_partition_key"],
        "count_for_queue": ["self", "queue_name"],
        "count_for_partition": ["self", "queue_name", "queue_partition_key"],
    }.items():
        method = getattr(ActiveWorkflowById, name, None)
        if method is None or _params(method) != params:
            found.append(f"dbos._core.ActiveWorkflowById.{name}{tuple(params[1:])} changed")
    if "future" not in _params(WorkflowHandleFuture.__init__):
        found.append("dbos._core.WorkflowHandleFuture no longer carries its future")
    return found


class InternalsChanged(RuntimeError):
    """The installed dbos does not match what this module was checked against."""


class ClaimCountingActiveSet(ActiveWorkflowById):
    """DBOS's active-workflow registry, plus claims dispatched but not yet registered (see 3.)."""

    def __init__(self) -> None:
        super().__init__()
        self._claims_lock = threading.Lock()
        self._claims: dict[str, QueueBucket] = {}

    def reserve(self, workflow_id: str, bucket: QueueBucket) -> None:
        with self._claims_lock:
            self._claims[workflow_id] = bucket

    def unreserve(self, workflow_id: str) -> None:
        with self._claims_lock:
            self._claims.pop(workflow_id, None)

    def add(
        self,
        key: str,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
    ) -> Any:
        # Registered first, then the claim dropped: counted twice for an instant, never zero times.
        entry = super().add(key, queue_name, queue_partition_key)
        self.unreserve(key)
        return entry

    def count_for_queue(self, queue_name: str) -> int:
        with self._claims_lock:
            claimed = sum(1 for q, _ in self._claims.values() if q == queue_name)
        return int(super().count_for_queue(queue_name)) + claimed

    def count_for_partition(self, queue_name: str, queue_partition_key: str | None) -> int:
        with self._claims_lock:
            claimed = sum(
                1 for b in self._claims.values() if b == (queue_name, queue_partition_key)
            )
        return int(super().count_for_partition(queue_name, queue_partition_key)) + claimed


_ORIGINAL_QUEUE_WORKER_THREAD: Callable[..., Any] | None = getattr(
    dbos_queue, "queue_worker_thread", None
)
_ORIGINAL_EXECUTE_DEQUEUED: Callable[..., Any] | None = getattr(
    dbos_queue, "execute_dequeued_workflow", None
)


def install(dbos: Any, wakeups: Wakeups, worker_limits: Mapping[str, int]) -> None:
    """Hook the launched-to-be DBOS instance: call after DBOS(config=...), before DBOS.launch()
    (the queue threads are spawned during launch). `worker_limits`: worker_concurrency by queue
    name, so a NOTIFY does not wake a queue thread that has no free slot."""
    found = problems()
    # 3. The registry DBOS constructs in DBOS.__init__ and reads in every poll (dbos 3.4.x).
    current = getattr(dbos, "_active_workflows_set", None)
    if not isinstance(current, ActiveWorkflowById):
        found.append("DBOS._active_workflows_set is no longer an ActiveWorkflowById")
    elif current.activeList():
        found.append("DBOS is already running workflows (install before DBOS.launch())")
    if found:
        raise InternalsChanged("; ".join(found))
    assert _ORIGINAL_QUEUE_WORKER_THREAD is not None
    assert _ORIGINAL_EXECUTE_DEQUEUED is not None
    queue_worker_thread = _ORIGINAL_QUEUE_WORKER_THREAD
    execute_dequeued_workflow = _ORIGINAL_EXECUTE_DEQUEUED

    active = ClaimCountingActiveSet()
    dbos._active_workflows_set = active

    # 1. The queue thread waits on a WakeableStop instead of the bare stop event (dbos 3.4.x).
    def wakeable_queue_worker_thread(stop_event: threading.Event, dbos: Any, queue: Any) -> None:
        name = str(queue.name)
        limit = worker_limits.get(name)

        def has_room() -> bool:
            return limit is None or active.count_for_queue(name) < limit

        queue_worker_thread(wakeups.stop_for(stop_event, name, has_room), dbos, queue)

    # 2. Each dispatch counted from the claim, and its completion rings a slot (dbos 3.4.x).
    def counted_execute_dequeued_workflow(dbos: Any, status: Any, owner_xid: str) -> Any:
        workflow_id = str(status["workflow_uuid"])
        queue_name = status.get("queue_name")
        active.reserve(workflow_id, (queue_name, status.get("queue_partition_key")))
        try:
            handle = execute_dequeued_workflow(dbos, status, owner_xid)
        except BaseException:
            active.unreserve(workflow_id)
            raise
        if isinstance(handle, WorkflowHandleFuture):

            def finished(_: Future[Any]) -> None:
                active.unreserve(workflow_id)
                if queue_name is not None:
                    wakeups.ring(str(queue_name), SLOT)

            handle.future.add_done_callback(finished)
        else:
            # Not run (the row moved on since the claim), or a coroutine workflow handed to DBOS's
            # event loop: DBOS counts that one once it registers, as it would without us, and its
            # end is noticed at the next timer poll.
            active.unreserve(workflow_id)
        return handle

    dbos_queue.queue_worker_thread = wakeable_queue_worker_thread
    setattr(dbos_queue, "execute_dequeued_workflow", counted_execute_dequeued_workflow)  # noqa: B010


def uninstall() -> None:
    """Put the module functions back (tests; a worker process never needs to)."""
    if _ORIGINAL_QUEUE_WORKER_THREAD is not None:
        dbos_queue.queue_worker_thread = _ORIGINAL_QUEUE_WORKER_THREAD
    if _ORIGINAL_EXECUTE_DEQUEUED is not None:
        setattr(dbos_queue, "execute_dequeued_workflow", _ORIGINAL_EXECUTE_DEQUEUED)  # noqa: B010
