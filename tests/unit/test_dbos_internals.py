"""The one door to dbos internals (services/common/dbos_internals.py) still fits the installed
dbos, and so do the queue-thread hooks built on it (services/worker/queue_hooks.py).

If this fails after a dbos upgrade, the message names each internal that moved or changed shape:
re-read the new dbos source (_queue.py's queue_worker_thread and queue_thread, _core.py's
execute_dequeued_workflow and ActiveWorkflowById), adapt the modules, then update CHECKED_VERSION.
Until then a worker logs "wake-ups disabled, polling only" and keeps working on its timer.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.common import dbos_internals as door
from services.common.dbos_internals import ActiveWorkflowById
from services.worker import queue_hooks as dbos_internals
from services.worker.queue_hooks import ClaimCountingActiveSet, InternalsChanged
from services.worker.wake import Wakeups


def test_every_internal_used_is_where_and_how_it_was_checked() -> None:
    found = dbos_internals.problems()
    assert found == [], "dbos internals changed:\n  " + "\n  ".join(found)


def test_claims_count_until_registered_and_never_twice() -> None:
    active = ClaimCountingActiveSet()
    active.reserve("a", ("q", None))
    active.reserve("b", ("q", "p1"))
    active.reserve("c", ("other", None))
    # Claimed, not yet registered by their executor threads: DBOS alone would count 0 here.
    assert active.count_for_queue("q") == 2
    assert active.count_for_partition("q", "p1") == 1
    entry = active.add("a", "q", None)  # registration takes over from the claim
    assert active.count_for_queue("q") == 2
    entry.release()  # finished
    assert active.count_for_queue("q") == 1
    active.unreserve("b")  # its future completed without registering (e.g. it failed early)
    active.unreserve("b")  # idempotent
    assert active.count_for_queue("q") == 0
    assert active.count_for_queue("other") == 1
    assert isinstance(active, ActiveWorkflowById)


class _NotDBOS:
    pass


def test_install_refuses_an_instance_it_does_not_recognise() -> None:
    with pytest.raises(InternalsChanged, match="_active_workflows_set"):
        dbos_internals.install(_NotDBOS(), Wakeups(), {})


def test_install_refuses_after_launch() -> None:
    class Running:
        def __init__(self) -> None:
            self._active_workflows_set = ActiveWorkflowById()
            self._active_workflows_set.add("busy", "q", None)

    fake: Any = Running()
    with pytest.raises(InternalsChanged, match=r"before DBOS\.launch"):
        dbos_internals.install(fake, Wakeups(), {})


def test_install_wraps_the_queue_thread_and_dispatch_and_uninstall_restores() -> None:
    _queue = door.dbos_queue

    class Fresh:
        def __init__(self) -> None:
            self._active_workflows_set = ActiveWorkflowById()

    fake: Any = Fresh()
    thread_fn, dispatch_fn = _queue.queue_worker_thread, _queue.execute_dequeued_workflow  # type: ignore[attr-defined]
    try:
        dbos_internals.install(fake, Wakeups(), {"q": 2})
        assert isinstance(fake._active_workflows_set, ClaimCountingActiveSet)
        assert _queue.queue_worker_thread is not thread_fn
        assert _queue.execute_dequeued_workflow is not dispatch_fn  # type: ignore[attr-defined]
    finally:
        dbos_internals.uninstall()
    assert _queue.queue_worker_thread is thread_fn
    assert _queue.execute_dequeued_workflow is dispatch_fn  # type: ignore[attr-defined]


def test_the_door_names_resolve() -> None:
    """Every name the door re-exports imports and is what its users expect (a moved dbos private
    fails here, at import or below, with the name)."""
    for name in door.__all__:
        assert getattr(door, name) is not None, name
    for exc in (
        door.DBOSException,
        door.DBOSWorkflowCancelledError,
        door.DBOSWorkflowConflictIDError,
        door.DBOSWorkflowIDInUseError,
    ):
        assert issubclass(exc, BaseException), exc
    assert door.dbos_instance() is None  # nothing launched in this process
    assert hasattr(door.workflow_registry(), "compute_app_version")
    assert callable(door.deserialize_value)
    assert callable(door.deserialize_exception)


def test_enqueue_many_relies_on_these_shapes() -> None:
    """enqueue_many records what DBOS's own insert path sends; each assumption it makes about
    that path is checked here (the rows themselves: tests/integration/test_enqueue_many.py)."""
    import inspect

    from dbos import DBOSClient
    from dbos._sys_db import SystemDatabase

    assert list(inspect.signature(DBOSClient._build_enqueue_status).parameters)[:2] == [
        "self",
        "options",
    ]
    insert = inspect.signature(SystemDatabase._insert_workflow_status).parameters
    assert {"status", "conn", "creator_xid", "reuse_policy"} <= set(insert)
    assert callable(SystemDatabase._apply_caller_schema)
    prepared = inspect.getsource(SystemDatabase._execute_prepared)
    # The two ways it runs a statement, which the recorder stands in for.
    assert "connection.dialect is not self.engine.dialect" in prepared
    assert "conn.execute(build(), values)" in prepared
    assert "connection.exec_driver_sql(sql, params)" in prepared
    # "The row is new" is read from fetchone() of the status INSERT.
    assert "results.fetchone()" in inspect.getsource(SystemDatabase._insert_workflow_status)


def test_deserialize_args_reads_portable_inputs() -> None:
    """The API decodes a workflow's stored input (services/common/payloads.py) with it."""
    raw = '{"positionalArgs":[],"namedArgs":{"num_steps":3}}'
    decoded = door.deserialize_args(raw, "portable_json", door.DefaultSerializer())
    assert decoded == {"args": (), "kwargs": {"num_steps": 3}}
