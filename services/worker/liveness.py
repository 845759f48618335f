"""Heartbeats and the dead-worker recovery sweep, in one background thread per worker.

Every HEARTBEAT seconds the worker stamps its row in the executors table. Every SWEEP seconds it
tries to become the one sweeper (a Postgres advisory lock) and re-enqueues the PENDING workflows
of executors whose heartbeat is older than DEAD_AFTER seconds, if they ran this worker's
application version: DBOS then replays their checkpointed steps and continues where they stopped.
PENDING work of other versions ("orphans") is only counted, for the metric and alert: it needs
workers of its own version, which the drainer (services/drain/) starts and whose sweep then
recovers it; moving it onto this version is an operator's decision (`queue-worker recover`).

A worker sweeps only after its own heartbeats have succeeded for DEAD_AFTER seconds in a row: after
a database outage, live peers need that long to heartbeat again, and must not be declared dead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.executor_sql import ExecutorQueries
from services.common.settings import Settings

log = logging.getLogger("queue_worker.liveness")


class Liveness:
    def __init__(
        self,
        settings: Settings,
        app_version: str,
        queries: ExecutorQueries,
        registry: CollectorRegistry,
    ) -> None:
        self.settings = settings
        # The version DBOS runs with (services/worker/version.py), not the configured pin.
        self.app_version = app_version
        self.queries = queries
        self.state = "running"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)
        self._healthy_since: float | None = None
        self._last_sweep = 0.0
        self.recovered = Counter(
            "queue_worker_recovered_workflows_total",
            "PENDING workflows of dead workers that this worker re-enqueued.",
            registry=registry,
        )
        self.handed_back = Counter(
            "queue_worker_handed_back_workflows_total",
            "In-flight workflows this worker re-enqueued at shutdown (grace period expired).",
            registry=registry,
        )
        self.orphaned = Gauge(
            "queue_worker_orphaned_workflows",
            "PENDING workflows of dead workers of another app version (not auto-recovered).",
            registry=registry,
        )
        self.heartbeat_ok = Gauge(
            "queue_worker_heartbeat_ok",
            "1 if this worker's last heartbeat reached the database.",
            registry=registry,
        )

    def beat(self) -> None:
        """One heartbeat now (also called before DBOS launches, so a claim never precedes it)."""
        self.queries.heartbeat(
            executor_id=self.settings.executor_id,
            app_version=self.app_version,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            state=self.state,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sweep(self) -> int:
        """Recover dead executors' PENDING work of our version; returns how many workflows."""
        recovered = 0
        orphans = 0
        with self.queries.engine.begin() as conn:
            if not self.queries.try_sweep_lock(conn):
                return 0  # another worker is sweeping
            dead = self.queries.dead_executor_work(
                me=self.settings.executor_id, dead_after_sec=self.settings.worker_dead_after_seconds
            )
            for work in dead:
                if work.app_version != self.app_version:
                    orphans += work.pending
                    continue
                n = self.queries.reenqueue(work.executor_id, app_version=work.app_version)
                if n:
                    recovered += n
                    log.warning(
                        "recovered workflows of a dead worker",
                        extra={"dead_executor_id": work.executor_id, "workflows": n},
                    )
                self.queries.forget(work.executor_id)
        self.orphaned.set(orphans)
        self.recovered.inc(recovered)
        return recovered

    def _run(self) -> None:
        s = self.settings
        while not self._stop.wait(s.worker_heartbeat_seconds):
            try:
                self.beat()
                self.heartbeat_ok.set(1)
                now = time.monotonic()
                if self._healthy_since is None:
                    self._healthy_since = now
            except Exception as exc:
                self.heartbeat_ok.set(0)
                self._healthy_since = None
                log.warning("heartbeat failed", extra={"error": type(exc).__name__})
                continue
            if self.state != "running" or s.worker_recovery_sweep_seconds <= 0:
                continue
            if (
                now - self._healthy_since < s.worker_dead_after_seconds
                or now - self._last_sweep < s.worker_recovery_sweep_seconds
            ):
                continue
            self._last_sweep = now
            try:
                self.sweep()
            except Exception as exc:
                log.warning(
                    "recovery sweep failed", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
