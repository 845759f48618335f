"""SQL about application versions: the image each one runs, the latest one, and each one's backlog
and live workers. Read by the drainer (services/drain/) and the API's per-version gauges; written
by each worker at start-up.

A DBOS worker runs only workflows of its own application version (services/worker/version.py), so
after a release that changed the workflow code the old version's unfinished workflows need workers
of the old image. Workers record here which image runs their version; nothing else knows it once
their pods are gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from services.common.executor_sql import schema_parts

_RECORD = """
INSERT INTO {t}versions AS v (app_version, image, pinned, first_seen, last_seen)
VALUES (:app_version, :image, :pinned, {now}, {now})
ON CONFLICT (app_version) DO UPDATE SET
    image = COALESCE(excluded.image, v.image), pinned = excluded.pinned,
    last_seen = excluded.last_seen
"""

# DBOS's own rule (SystemDatabase._latest_application_version): the newest version_timestamp among
# the application's versions and unclaimed ones. Version-less rows (what the API enqueues) go to it.
_LATEST = """
SELECT version_name FROM {s}application_versions
WHERE application_name = :app OR application_name IS NULL
ORDER BY version_timestamp DESC
LIMIT 1
"""

# Not index-only (idx_workflow_status_in_flight_v2 does not carry application_version): it visits
# the heap of each in-flight row. Measured in docs/metrics.md; the API caches it like the queue
# counts.
_BACKLOG = """
SELECT queue_name, application_version, status, count(*) AS n
FROM {s}workflow_status
WHERE status IN ('ENQUEUED', 'PENDING')
GROUP BY queue_name, application_version, status
"""

_LIVE_WORKERS = """
SELECT app_version, count(*) AS n FROM {t}executors
WHERE last_seen >= {now} - :dead_after_ms
GROUP BY app_version
"""

# PENDING workflows that a live worker (fresh heartbeat) is running: they need no other worker.
# PENDING rows are few and covered by idx_workflow_status_pending.
_SERVED = """
SELECT ws.application_version, count(*) AS n
FROM {s}workflow_status ws
JOIN {t}executors ex ON ex.executor_id = ws.executor_id
WHERE ws.status = 'PENDING' AND ex.last_seen >= {now} - :dead_after_ms
GROUP BY ws.application_version
"""

_IMAGES = "SELECT app_version, image, pinned FROM {t}versions"


@dataclass(frozen=True)
class Backlog:
    queue: str | None
    app_version: str | None  # None: enqueued without a version (runs on the latest one)
    enqueued: int
    pending: int


@dataclass(frozen=True)
class VersionImage:
    image: str | None
    pinned: bool  # the version was DBOS__APPVERSION, not the hash of the workflow source


@dataclass(frozen=True)
class VersionSnapshot:
    latest: str | None
    backlog: list[Backlog]
    live_workers: dict[str, int] = field(default_factory=dict)
    images: dict[str, VersionImage] = field(default_factory=dict)
    # PENDING workflows per version that a live worker is running.
    served: dict[str, int] = field(default_factory=dict)

    def backlog_of(self, version: str) -> int:
        """ENQUEUED + PENDING workflows of `version` (version-less ones count for the latest)."""
        return sum(
            b.enqueued + b.pending for b in self.backlog if self.effective(b.app_version) == version
        )

    def unserved_of(self, version: str) -> int:
        """Backlog of `version` that no live worker is running: queued, or on a dead worker."""
        return self.backlog_of(version) - self.served.get(version, 0)

    def effective(self, version: str | None) -> str | None:
        return self.latest if version is None else version

    def versions_with_backlog(self) -> set[str]:
        out = {self.effective(b.app_version) for b in self.backlog if b.enqueued + b.pending}
        return {v for v in out if v is not None}


class VersionQueries:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._parts = schema_parts(engine)

    def _sql(self, template: str) -> sa.TextClause:
        return sa.text(template.format(**self._parts))

    def record(self, app_version: str, *, image: str | None, pinned: bool) -> None:
        """This worker's version runs on `image` (None: unknown, keeps what was recorded)."""
        with self.engine.begin() as conn:
            conn.execute(
                self._sql(_RECORD),
                {"app_version": app_version, "image": image, "pinned": int(pinned)},
            )

    def snapshot(self, app_name: str, *, dead_after_sec: float) -> VersionSnapshot:
        """Latest version, backlog by queue and version, live workers and images, in one go."""
        with self.engine.connect() as conn:
            latest = conn.execute(self._sql(_LATEST), {"app": app_name}).scalar()
            rows = conn.execute(self._sql(_BACKLOG)).all()
            fresh = {"dead_after_ms": int(dead_after_sec * 1000)}
            live = conn.execute(self._sql(_LIVE_WORKERS), fresh).all()
            served = conn.execute(self._sql(_SERVED), fresh).all()
            images = conn.execute(self._sql(_IMAGES)).all()
        counts: dict[tuple[str | None, str | None], dict[str, int]] = {}
        for queue, version, status, n in rows:
            counts.setdefault((queue, version), {})[status] = int(n)
        return VersionSnapshot(
            latest=latest,
            backlog=[
                Backlog(queue, version, c.get("ENQUEUED", 0), c.get("PENDING", 0))
                for (queue, version), c in sorted(counts.items(), key=lambda kv: str(kv[0]))
            ],
            live_workers={r.app_version: int(r.n) for r in live},
            images={r.app_version: VersionImage(r.image, bool(r.pinned)) for r in images},
            served={r.application_version: int(r.n) for r in served if r.application_version},
        )
