"""Which DBOS application version this worker runs: the identity of its workflow code.

DBOS workers only dequeue workflows of their own application version (and version-less ones if
theirs is the latest registered version), and only recover PENDING work of their own version. So
the version must change exactly when the workflow code does, never with the image tag: a release
that only changes a log line, a dependency or the configuration must keep running the workflows
already in flight. DBOS's default does that: an MD5 of the source of every registered workflow
function (sorted), the dbos package version and the application name (DBOSRegistry.
compute_app_version in dbos 3.4). Step bodies are not part of it (DBOS registers each step as a
generic wrapper), so a change that must not meet old checkpoints needs DBOS__APPVERSION.

We compute it here, before DBOS.launch(), because the worker must report it (heartbeat row,
metrics) before DBOS can claim anything; runner.launch() checks that DBOS arrived at the same.
"""

from __future__ import annotations

import logging

from dbos import DBOS

from services.common.dbos_internals import workflow_registry
from services.common.names import APP_NAME
from services.common.settings import Settings
from services.common.versions_sql import VersionQueries

log = logging.getLogger("queue_worker.worker")


def workflow_version(settings: Settings) -> str:
    """DBOS__APPVERSION if pinned, else the hash DBOS will compute at launch for these workflows."""
    import services.worker.workflows  # noqa: F401  (importing registers the workflows)

    if settings.pinned_app_version:
        return settings.pinned_app_version
    # The registry exists before any DBOS instance and holds exactly the workflows launch()
    # hashes (dbos registers none of its own).
    version: str = workflow_registry().compute_app_version(APP_NAME)
    return version


def announce(settings: Settings, app_version: str, versions: VersionQueries) -> None:
    """After DBOS.launch(), for the release's own workers (WORKER_ROLE=main):

    - make their version the latest, which DBOS does only for a version it has never seen: after
      a rollback to an older version, the version-less work the API enqueues would otherwise
      wait for workers of the newer version that no longer run;
    - record the image that runs it, so the drainer can start workers of this version again
      once a newer release replaced them and work of this version is left.

    Drain workers (started for an old version) do neither: their version must stay old.
    """
    if settings.worker_role != "main":
        return
    latest = DBOS.get_latest_application_version()["version_name"]
    if latest != app_version:
        DBOS.set_latest_application_version(app_version)
        log.warning(
            "made this application version the latest",
            extra={"app_version": app_version, "previous_latest": latest},
        )
    versions.record(
        app_version, image=settings.worker_image, pinned=settings.pinned_app_version is not None
    )
