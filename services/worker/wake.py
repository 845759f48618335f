"""Bells that end a DBOS queue thread's wait between polls early, so it polls now.

DBOS 3.4's queue thread sleeps between polls in `stop_event.wait(timeout=polling_interval)` and
polls when that returns False (services/worker/queue_hooks.py gives it a WakeableStop in place
of the event). Two things ring a queue's bell:
- work: a NOTIFY from the enqueue trigger (services/worker/listener.py). Ignored while this
  worker has no free slot on the queue: the poll would claim nothing, and a finishing workflow
  rings anyway. Under a backlog that keeps full workers from polling once per enqueue.
- a slot: one of this worker's workflows on the queue finished. The queue thread refills the slot
  at once instead of at the next tick; this is what lifts the worker_concurrency /
  polling_interval ceiling on short workflows.

Rings coalesce: however many arrive during a poll, the thread polls once more. The poll itself is
still DBOS's own, on its own thread, so its worker_concurrency accounting stays the only one.
The timer is unchanged and remains the fallback (a dropped listener, a missed NOTIFY).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WORK = 1
SLOT = 2


class Bell:
    """One queue thread's wake-up flag: ring() from any thread, wait() from the queue thread."""

    def __init__(self, has_room: Callable[[], bool]) -> None:
        self._cond = threading.Condition()
        self._reasons = 0
        self._has_room = has_room

    def ring(self, reason: int) -> None:
        with self._cond:
            self._reasons |= reason
            self._cond.notify_all()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """True when rung for a reason worth a poll; False on timeout or stop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not stop.is_set():
                reasons, self._reasons = self._reasons, 0
                if reasons & SLOT or (reasons & WORK and self._has_room()):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return False


class WakeableStop:
    """Stands in for the stop event DBOS passes to a queue thread: same is_set(), and a wait()
    that also returns (False: "not stopping, poll now") when the queue's bell rings."""

    def __init__(self, stop: threading.Event, bell: Bell) -> None:
        self._stop = stop
        self._bell = bell

    def is_set(self) -> bool:
        return self._stop.is_set()

    def set(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._stop.is_set():
            return True
        self._bell.wait(3600.0 if timeout is None else timeout, self._stop)
        return self._stop.is_set()


class Wakeups:
    """Every queue thread's bell in this process, by queue name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bells: dict[str, Bell] = {}
        self._watched: set[int] = set()
        self.rings = {WORK: 0, SLOT: 0}  # counts, for metrics and tests

    def stop_for(
        self, stop: threading.Event, queue_name: str, has_room: Callable[[], bool]
    ) -> WakeableStop:
        """The wait object for a (re)started queue thread. DBOS sets `stop` to stop every
        thread; a watcher rings this process's bells then, so no thread sleeps through it."""
        bell = Bell(has_room)
        # DBOS starts a queue's thread up to a second after the queue is registered, and the
        # thread first sleeps a whole polling interval. Rings before the bell existed were
        # dropped, and a backlog may be waiting: poll at once instead.
        bell.ring(WORK)
        with self._lock:
            self._bells[queue_name] = bell
            watch = id(stop) not in self._watched
            self._watched.add(id(stop))
        if watch:
            threading.Thread(
                target=self._ring_on_stop, args=(stop,), name="wake-stop-watch", daemon=True
            ).start()
        return WakeableStop(stop, bell)

    def _ring_on_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self.ring_all(SLOT)

    def ring(self, queue_name: str, reason: int) -> bool:
        """Ring one queue's bell; False if no thread of this process runs that queue."""
        with self._lock:
            bell = self._bells.get(queue_name)
            if bell is None:
                return False
            self.rings[reason] += 1
        bell.ring(reason)
        return True

    def ring_all(self, reason: int) -> None:
        """After a gap in listening (start, reconnect): anything may have been enqueued."""
        with self._lock:
            bells = list(self._bells.values())
        for bell in bells:
            bell.ring(reason)

    def queues(self) -> list[str]:
        with self._lock:
            return sorted(self._bells)
