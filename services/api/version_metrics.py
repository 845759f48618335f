"""Per-application-version gauges for the API's /metrics: backlog, in-flight and live workers.

After a release that changed the workflow code, two versions have work at once: the new one takes
everything new, the old one finishes what it started on drain workers (services/drain/). These
series show each version, so a dashboard can watch the old one drain and an alert can catch a
version that has work and no worker. They extend, not replace, queue_worker_queue_depth{queue} and
queue_worker_queue_in_flight{queue} (the autoscaling signal), whose sums over app_version they
equal. Workflows enqueued without a version are counted under the latest version, which runs them.

Cached like the queue gauges (METRICS_CACHE_SECONDS); every API replica exports the same values:
aggregate with max.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.names import APP_NAME
from services.common.versions_sql import VersionQueries, VersionSnapshot
from services.common.workflow_types import QUEUES as KNOWN_QUEUES

log = logging.getLogger("queue_worker.api")

# Label for work enqueued before any worker registered a version (nothing can run it yet).
NO_VERSION = "none"


class VersionStatsCache:
    def __init__(self, queries: VersionQueries, ttl_sec: float, dead_after_sec: float) -> None:
        self._queries = queries
        self._ttl = ttl_sec
        self._dead_after = dead_after_sec
        self._lock = threading.Lock()
        self._snapshot: VersionSnapshot | None = None
        self._fetched_at = -1e18

    def get(self) -> VersionSnapshot | None:
        """Fresh or cached; on a database error the last good snapshot (None before the first)."""
        with self._lock:
            if time.monotonic() - self._fetched_at >= self._ttl:
                try:
                    self._snapshot = self._queries.snapshot(
                        APP_NAME, dead_after_sec=self._dead_after
                    )
                except Exception as exc:
                    log.warning("version stats query failed", extra={"error": type(exc).__name__})
                self._fetched_at = time.monotonic()
            return self._snapshot


class VersionCollector(Collector):
    def __init__(self, cache: VersionStatsCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "queue_worker_queue_depth_by_version",
            "Workflows waiting (ENQUEUED) per queue and application version (version-less ones "
            "under the latest version, which runs them).",
            labels=["queue", "app_version"],
        )
        in_flight = GaugeMetricFamily(
            "queue_worker_queue_in_flight_by_version",
            "Workflows running (PENDING) per queue and application version.",
            labels=["queue", "app_version"],
        )
        workers = GaugeMetricFamily(
            "queue_worker_version_workers",
            "Workers with a fresh heartbeat, per application version they run.",
            labels=["app_version"],
        )
        latest = GaugeMetricFamily(
            "queue_worker_version_latest",
            "1 for the latest application version: the one that takes new work.",
            labels=["app_version"],
        )
        snap = self._cache.get()
        if snap is not None:
            counts: dict[tuple[str, str], list[int]] = {}
            if snap.latest is not None:
                for queue in KNOWN_QUEUES:  # the current version's series never vanish
                    counts[(queue, snap.latest)] = [0, 0]
                latest.add_metric([snap.latest], 1)
            for b in snap.backlog:
                if b.queue is None:
                    continue
                version = snap.effective(b.app_version) or NO_VERSION
                entry = counts.setdefault((b.queue, version), [0, 0])
                entry[0] += b.enqueued
                entry[1] += b.pending
            for (queue, version), (enqueued, pending) in sorted(counts.items()):
                depth.add_metric([queue, version], enqueued)
                in_flight.add_metric([queue, version], pending)
            for version, n in sorted(snap.live_workers.items()):
                workers.add_metric([version], n)
        yield from (depth, in_flight, workers, latest)
