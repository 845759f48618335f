"""`queue-worker drainer`: old application versions finish their work on their own workers.

A release that changes the workflow code starts workers of a new application version; DBOS lets
each worker run only its own version, so the old version's handed-back and still-queued workflows
would wait forever. Every DRAIN_INTERVAL_SECONDS this loop reads the versions' backlog and
recorded images (services/common/versions_sql.py), compares them with the drain Deployments that
exist, and creates, scales up or deletes them (services/drain/plan.py says exactly when).

One drainer acts at a time: each pass holds a Postgres advisory lock (two pods overlap during a
rollout of the drainer itself). It serves /healthz, /readyz and /metrics like a worker.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Gauge

from services.common.executor_sql import SWEEP_LOCK_KEY
from services.common.kube import Kube
from services.common.logs import configure_logging
from services.common.names import APP_NAME
from services.common.settings import Settings, SettingsError
from services.common.sql import create_engine
from services.common.versions_sql import VersionQueries
from services.drain.plan import (
    Existing,
    Plan,
    drain_deployment,
    drain_selector,
    existing_drains,
    plan,
    worker_concurrency,
)
from services.worker.health_server import HealthServer, build_health_app

log = logging.getLogger("queue_worker.drainer")

DRAIN_LOCK_KEY = SWEEP_LOCK_KEY + 2


class Drainer:
    def __init__(self, settings: Settings, kube: Kube, engine: sa.Engine) -> None:
        if settings.worker_deployment is None:
            raise SettingsError(
                "the drainer needs WORKER_DEPLOYMENT (the worker Deployment's name)"
            )
        self.settings = settings
        self.worker_deployment: str = settings.worker_deployment
        self.kube = kube
        self.engine = engine
        self.versions = VersionQueries(engine)
        self.registry = CollectorRegistry()
        self.drains = Gauge(
            "queue_worker_drain_replicas",
            "Replicas of each drain Deployment this drainer keeps, by application version.",
            ["app_version"],
            registry=self.registry,
        )
        self.no_image = Gauge(
            "queue_worker_drain_versions_without_image",
            "Old versions with work whose image no worker recorded (they need an operator).",
            registry=self.registry,
        )
        self.last_pass_ok = Gauge(
            "queue_worker_drain_last_pass_ok",
            "1 if the last pass succeeded.",
            registry=self.registry,
        )
        self._warned: set[str] = set()

    def _try_lock(self, conn: sa.Connection) -> bool:
        if conn.dialect.name != "postgresql":
            return True  # SQLite: one machine, one drainer
        return bool(
            conn.execute(
                sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": DRAIN_LOCK_KEY}
            ).scalar_one()
        )

    def reconcile(self) -> Plan | None:
        """One pass. Returns what it did, or None if another drainer holds the lock."""
        with self.engine.begin() as lock:
            if not self._try_lock(lock):
                return None
            worker = self.kube.get_deployment(self.worker_deployment)
            if worker is None:
                log.warning("worker Deployment not found", extra={"name": self.worker_deployment})
                return Plan()
            existing = existing_drains(self.kube.list_deployments(drain_selector(worker)))
            snapshot = self.versions.snapshot(
                APP_NAME, dead_after_sec=self.settings.worker_dead_after_seconds
            )
            todo = plan(
                snapshot,
                existing,
                worker_deployment=self.worker_deployment,
                concurrency=worker_concurrency(worker),
                max_replicas=self.settings.drain_max_replicas,
            )
            for drain in todo.create:
                self.kube.create_deployment(drain_deployment(worker, drain))
                log.warning(
                    "started workers to drain an old application version",
                    extra={
                        "app_version": drain.app_version,
                        "deployment": drain.name,
                        "image": drain.image,
                        "replicas": drain.replicas,
                        "backlog": snapshot.backlog_of(drain.app_version),
                    },
                )
            for name, replicas in todo.scale:
                self.kube.scale_deployment(name, replicas)
                log.info("scaled a drain up", extra={"deployment": name, "replicas": replicas})
            for gone in todo.delete:
                self.kube.delete_deployment(gone.name)
                log.warning(
                    "old application version drained: removed its workers",
                    extra={"app_version": gone.app_version, "deployment": gone.name},
                )
            for version in todo.no_image:
                if version not in self._warned:
                    self._warned.add(version)
                    log.error(
                        "an old application version has work but no recorded image",
                        extra={
                            "app_version": version,
                            "backlog": snapshot.backlog_of(version),
                        },
                    )
        self._export(existing, todo)
        return todo

    def _export(self, existing: list[Existing], todo: Plan) -> None:
        self.drains.clear()
        deleted = {e.name for e in todo.delete}
        scaled = dict(todo.scale)
        for e in existing:
            if e.name not in deleted:
                self.drains.labels(e.app_version).set(scaled.get(e.name, e.replicas))
        for d in todo.create:
            self.drains.labels(d.app_version).set(d.replicas)
        self.no_image.set(len(todo.no_image))


def run_drainer(settings: Settings, *, metrics_host: str, metrics_port: int) -> int:
    configure_logging(settings.log_level, settings.log_format, "drainer")
    try:
        kube = Kube.from_settings(settings)
        engine = create_engine(settings.database_url, pool_size=2, pooler=settings.database_pooler)
        drainer = Drainer(settings, kube, engine)
    except SettingsError as exc:
        log.error(str(exc))
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = HealthServer(
        build_health_app(drainer.registry, lambda: (True, "ok")), metrics_host, metrics_port
    )
    server.start()
    log.info(
        "drainer starting",
        extra={
            "worker_deployment": drainer.worker_deployment,
            "namespace": kube.namespace,
            "interval_sec": settings.drain_interval_seconds,
        },
    )
    while not stop.is_set():
        try:
            drainer.reconcile()
            drainer.last_pass_ok.set(1)
        except Exception as exc:
            drainer.last_pass_ok.set(0)
            log.warning("drain pass failed", extra={"error": f"{type(exc).__name__}: {exc}"[:500]})
        stop.wait(settings.drain_interval_seconds)
    server.stop()
    engine.dispose()
    log.info("drainer stopped")
    return 0
