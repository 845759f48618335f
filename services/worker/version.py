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

from services.common.names import APP_NAME
from services.common.settings import Settings


def workflow_version(settings: Settings) -> str:
    """DBOS__APPVERSION if pinned, else the hash DBOS will compute at launch for these workflows."""
    import services.worker.workflows  # noqa: F401  (importing registers the workflows)

    if settings.pinned_app_version:
        return settings.pinned_app_version
    # Private to dbos, which is pinned exactly; the registry exists before any DBOS instance and
    # holds exactly the workflows launch() hashes (dbos registers none of its own).
    from dbos._dbos import _get_or_create_dbos_registry

    return _get_or_create_dbos_registry().compute_app_version(APP_NAME)
