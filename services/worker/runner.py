"""`queue-worker worker`: launch DBOS, register queues, serve health, and shut down gracefully.

Shutdown (SIGTERM from Kubernetes, or Ctrl-C): readiness turns false at once, DBOS stops dequeuing,
in-flight workflows get up to WORKER_SHUTDOWN_GRACE_SECONDS to finish, then the process exits 0.
A workflow still running after the grace period is handed back (re-enqueued) before exit, so
another worker resumes it from its last checkpointed step; a worker killed outright is recovered
by the heartbeat sweep of the others (services/worker/liveness.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig

from services.common.executor_sql import ExecutorQueries
from services.common.kube import Kube
from services.common.logs import configure_logging
from services.common.names import APP_NAME
from services.common.pooler import dbos_engine_kwargs
from services.common.retention_sql import RetentionQueries
from services.common.settings import Settings, SettingsError
from services.common.sql import WorkflowQueries, create_engine
from services.common.versions_sql import VersionQueries
from services.common.wake_sql import install_wake_trigger, wake_trigger_installed
from services.worker import queue_hooks
from services.worker.deletion_cost import DeletionCost
from services.worker.health_server import HealthServer, build_health_app
from services.worker.listener import WakeListener
from services.worker.liveness import Liveness
from services.worker.metrics import WorkerMetrics, active_workflows, register_wake_metrics
from services.worker.pools import OWN_POOL_SIZE, dbos_pool_size
from services.worker.retention import RetentionLoop
from services.worker.version import announce, workflow_version
from services.worker.wake import Wakeups

log = logging.getLogger("queue_worker.worker")


def dbos_config(settings: Settings) -> DBOSConfig:
    return {
        "name": APP_NAME,
        "system_database_url": settings.database_url,
        # None: DBOS hashes the workflows' source (services/worker/version.py).
        "application_version": settings.pinned_app_version,
        "executor_id": settings.executor_id,
        "run_migrations": settings.run_migrations,
        "log_level": settings.log_level.upper(),
        # Behind PgBouncer: NullPool, so no pool size (services/common/pooler.py).
        "sys_db_pool_size": None if settings.database_pooler else dbos_pool_size(settings),
        "db_engine_kwargs": dbos_engine_kwargs(settings.database_pooler) or None,
        "scheduler_polling_interval_sec": settings.scheduler_polling_interval_seconds,
    }


def launch(settings: Settings, app_version: str, wakeups: Wakeups | None = None) -> bool:
    """Register workflows, launch DBOS and register the queues (the order dbos 3.4 requires).
    `app_version` is what workflow_version() promised; DBOS must agree, or our heartbeat rows,
    metrics and recovery would speak of another version than the one dequeued. With `wakeups`,
    hook DBOS's queue threads to them first; returns whether that worked."""
    from services.worker.queues import register_queues, worker_limits
    from services.worker.workflows import check_catalogue  # importing registers the workflows

    check_catalogue()
    dbos = DBOS(config=dbos_config(settings))
    # DBOS installs its own console handler at construction; route it through ours instead.
    configure_logging(settings.log_level, settings.log_format, "worker")
    hooked = False
    if wakeups is not None:
        try:
            # Between construction and launch: launch spawns the queue threads.
            queue_hooks.install(dbos, wakeups, worker_limits(settings))
            hooked = True
        except queue_hooks.InternalsChanged as exc:
            log.error("wake-ups disabled, polling only", extra={"reason": str(exc)[:500]})
    DBOS.launch()
    running = DBOS.application_version
    if running != app_version:
        raise RuntimeError(f"DBOS runs application version {running!r}, expected {app_version!r}")
    register_queues(settings)
    return hooked


def wait_for_schema(executors: ExecutorQueries, stop: threading.Event) -> bool:
    """With RUN_MIGRATIONS=false the schema is the migrations Job's to create, and on a first
    install it runs beside the pods: wait for it (alive, not ready) instead of exiting into a
    restart back-off. Returns False if told to stop first."""
    waited = 0.0
    while not executors.schema_ready():
        if waited % 10 == 0:
            log.info("waiting for the schema (queue-worker migrate)", extra={"waited_sec": waited})
        if stop.wait(1.0):
            return False
        waited += 1.0
    return True


def start_wake_listener(
    settings: Settings, engine: sa.Engine, wakeups: Wakeups, metrics: WorkerMetrics
) -> WakeListener:
    """After launch: make sure the enqueue trigger exists (or say it does not), then LISTEN.
    Wake-ups are an optimization: nothing here stops the worker, which can always poll."""
    try:
        if settings.run_migrations:
            install_wake_trigger(engine)
        installed = wake_trigger_installed(engine)
    except Exception as exc:
        log.warning("cannot check the enqueue trigger", extra={"error": f"{exc}"[:300]})
        installed = True  # unknown: say nothing more
    if not installed:
        log.warning(
            "enqueue trigger missing: new work waits for the next poll; run `queue-worker migrate`"
        )
    listener = WakeListener(settings.database_url, wakeups)
    register_wake_metrics(metrics.registry, wakeups, listener)
    listener.start()
    return listener


def run_worker(settings: Settings, *, metrics_host: str, metrics_port: int) -> int:
    configure_logging(settings.log_level, settings.log_format, "worker")
    stop = threading.Event()
    draining = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now without waiting for workflows")
            os._exit(1)
        log.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # One small pool for our own SQL (readiness, metrics reads, heartbeats, recovery sweeps);
    # DBOS keeps its own pool for the workflows.
    engine = create_engine(
        settings.database_url, pool_size=OWN_POOL_SIZE, pooler=settings.database_pooler
    )
    queries = WorkflowQueries(engine)

    def is_ready() -> tuple[bool, str]:
        if draining.is_set():
            return False, "draining"
        try:
            queries.ping()
        except Exception as exc:
            return False, f"database unreachable: {type(exc).__name__}"
        return True, "ok"

    # The version DBOS will run with (DBOS__APPVERSION, or the hash of the workflows' source):
    # everything we report and every same-version decision uses this one value.
    app_version = workflow_version(settings)
    metrics = WorkerMetrics(settings, app_version, queries)
    executors = ExecutorQueries(engine)
    liveness = Liveness(settings, app_version, executors, metrics.registry)
    retention = RetentionLoop(settings, RetentionQueries(engine), metrics.registry)
    server = HealthServer(build_health_app(metrics.registry, is_ready), metrics_host, metrics_port)
    server.start()

    log.info(
        "worker starting",
        extra={
            "database": settings.redacted_database_url,
            "executor_id": settings.executor_id,
            "app_version": app_version,
            "app_version_pinned": settings.pinned_app_version is not None,
            "role": settings.worker_role,
            "image": settings.worker_image,
            "worker_concurrency": settings.worker_concurrency,
            "worker_polling_interval_seconds": settings.worker_polling_interval_seconds,
            "worker_wake_on_notify": settings.worker_wake_on_notify,
            "metrics_port": metrics_port,
        },
    )
    wakeups = Wakeups() if settings.worker_wake_on_notify else None
    listener: WakeListener | None = None
    try:
        if settings.run_migrations:
            executors.create_schema()
        elif not wait_for_schema(executors, stop):
            # Stopped while waiting: nothing was claimed, nothing to hand back.
            log.info("worker stopped before the schema appeared")
            server.stop()
            logging.shutdown()
            os._exit(0)
        # Heartbeat before DBOS can claim anything, so no PENDING row of ours predates our row.
        liveness.beat()
        hooked = launch(settings, app_version, wakeups)
        announce(settings, app_version, VersionQueries(engine))
        if hooked and wakeups is not None:
            listener = start_wake_listener(settings, engine, wakeups, metrics)
    except Exception as exc:
        log.error("worker failed to start", extra={"error": f"{type(exc).__name__}: {exc}"[:500]})
        os._exit(1)
    liveness.start()
    deletion_cost = start_deletion_cost(settings)
    retention.start()
    log.info("worker ready")
    stop.wait()

    draining.set()
    # Keep heartbeating while draining: our in-flight work is not a dead worker's to recover.
    liveness.state = "draining"
    started = time.monotonic()
    log.info("draining", extra={"grace_sec": settings.worker_shutdown_grace_seconds})
    # Stops every queue poller first, then waits (polling once a second) for in-flight workflows.
    DBOS.destroy(workflow_completion_timeout_sec=settings.worker_shutdown_grace_seconds)  # type: ignore[arg-type]
    if listener is not None:
        listener.stop()
    if deletion_cost is not None:
        deletion_cost.stop()
    retention.stop()
    liveness.stop()
    hand_back(settings, app_version, executors, liveness)
    log.info("worker stopped", extra={"drain_sec": round(time.monotonic() - started, 3)})
    server.stop()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Workflow threads that outlived the grace period are non-daemon executor threads; a normal
    # interpreter exit would wait for them. Their work was handed back, so leave now.
    os._exit(0)


def start_deletion_cost(settings: Settings) -> DeletionCost | None:
    """With WORKER_POD_DELETION_COST, track this pod's deletion cost (see deletion_cost.py)."""
    if not settings.worker_pod_deletion_cost or settings.pod_name is None:
        return None
    try:
        kube = Kube.from_settings(settings)
    except SettingsError as exc:
        log.error("pod-deletion-cost disabled", extra={"error": str(exc)})
        return None
    tracker = DeletionCost(
        kube,
        settings.pod_name,
        active_workflows,
        settings.worker_pod_deletion_cost_interval_seconds,
    )
    tracker.start()
    return tracker


def hand_back(
    settings: Settings, app_version: str, executors: ExecutorQueries, liveness: Liveness
) -> None:
    """Re-enqueue what did not finish within the grace period, so no one waits for a sweep.
    The rows keep their version: the next worker running the same workflow code (the same
    version, whatever its image tag) resumes them from their last checkpointed step."""
    try:
        n = executors.reenqueue(settings.executor_id, app_version=app_version)
        executors.forget(settings.executor_id)
    except Exception as exc:
        # The sweep recovers it once our heartbeat goes stale.
        log.error("hand-back failed", extra={"error": f"{type(exc).__name__}: {exc}"[:500]})
        return
    liveness.handed_back.inc(n)
    if n:
        log.warning("handed back unfinished workflows", extra={"workflows": n})
