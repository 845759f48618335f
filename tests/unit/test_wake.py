"""Bells (services/worker/wake.py): rings are never lost, coalesce, respect free slots, and a
stop always ends the wait."""

from __future__ import annotations

import threading
import time

from services.worker.wake import SLOT, WORK, Bell, WakeableStop, Wakeups


def test_a_ring_before_the_wait_is_remembered() -> None:
    bell = Bell(lambda: True)
    stop = threading.Event()
    bell.ring(WORK)  # arrives while the queue thread is busy polling
    started = time.monotonic()
    assert bell.wait(5.0, stop) is True
    assert time.monotonic() - started < 0.5
    assert bell.wait(0.05, stop) is False  # coalesced: one poll for all earlier rings


def test_work_without_a_free_slot_keeps_waiting_but_a_slot_does_not() -> None:
    room = [False]
    bell = Bell(lambda: room[0])
    stop = threading.Event()
    bell.ring(WORK)
    assert bell.wait(0.1, stop) is False  # full: the NOTIFY is not worth a poll
    bell.ring(SLOT)
    assert bell.wait(5.0, stop) is True  # a workflow finished: poll now


def test_wakeable_stop_looks_like_the_event_dbos_passes() -> None:
    wakeups = Wakeups()
    stop = threading.Event()
    proxy = wakeups.stop_for(stop, "q", lambda: True)
    started = time.monotonic()
    assert proxy.wait(timeout=30.0) is False  # a new queue thread polls at once
    assert time.monotonic() - started < 1.0
    assert proxy.wait(timeout=0.01) is False  # timer: poll
    assert wakeups.ring("q", WORK) is True
    assert proxy.wait(timeout=5.0) is False  # rung: poll, not stopping
    assert wakeups.ring("not-mine", WORK) is False
    assert not proxy.is_set()


def test_setting_dbos_stop_event_ends_a_long_wait_at_once() -> None:
    wakeups = Wakeups()
    stop = threading.Event()
    proxy: WakeableStop = wakeups.stop_for(stop, "q", lambda: False)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(proxy.wait(timeout=30.0)))
    t.start()
    time.sleep(0.1)
    stop.set()  # DBOS.destroy() does this
    t.join(2.0)
    assert result == [True]
    assert proxy.wait(timeout=30.0) is True


def test_ring_counts_by_reason() -> None:
    wakeups = Wakeups()
    wakeups.stop_for(threading.Event(), "q", lambda: True)
    wakeups.ring("q", WORK)
    wakeups.ring("q", SLOT)
    wakeups.ring("q", SLOT)
    assert wakeups.rings == {WORK: 1, SLOT: 2}
    assert wakeups.queues() == ["q"]
