"""The retention loop: every RETENTION_INTERVAL_SECONDS, delete finished workflows older than
RETENTION_MAX_AGE_SECONDS, RETENTION_BATCH_SIZE per transaction (services/common/retention_sql.py).

It runs in the worker, not in a CronJob: every deployment (the chart, `make dev`, a plain
`queue-worker worker`) then gets it without another object or schedule to keep right, and a
Postgres advisory lock lets one worker replica run a pass at a time while the others skip it.
A pass stops after MAX_BATCHES_PER_PASS batches and the next continues, so one pass never holds
the database for long; between batches other transactions get their turn.
"""

from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, Counter

from services.common.retention_sql import RetentionPass, RetentionQueries
from services.common.settings import Settings

log = logging.getLogger("queue_worker.retention")

MAX_BATCHES_PER_PASS = 100


class RetentionLoop:
    def __init__(
        self, settings: Settings, queries: RetentionQueries, registry: CollectorRegistry
    ) -> None:
        self.settings = settings
        self.queries = queries
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self.deleted = Counter(
            "queue_worker_retention_deleted_workflows_total",
            "Finished workflows older than RETENTION_MAX_AGE_SECONDS that this worker deleted.",
            registry=registry,
        )

    @property
    def enabled(self) -> bool:
        return self.settings.retention_max_age_seconds > 0

    def run_once(self, now_ms: int | None = None) -> RetentionPass:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        cutoff = now - int(self.settings.retention_max_age_seconds * 1000)
        done = self.queries.run(
            cutoff, batch=self.settings.retention_batch_size, max_batches=MAX_BATCHES_PER_PASS
        )
        self.deleted.inc(done.deleted)
        if done.deleted:
            log.info(
                f"retention deleted {done.deleted} finished workflow(s)",
                extra={"deleted": done.deleted, "batches": done.batches, "more": done.more},
            )
        return done

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.retention_interval_seconds):
            try:
                while self.run_once().more and not self._stop.is_set():
                    pass  # a backlog: keep going, a pass of MAX_BATCHES_PER_PASS at a time
            except Exception as exc:
                log.warning(
                    "retention pass failed", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
