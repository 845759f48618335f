"""Your workflows live here.

Add a module beside demo.py with functions decorated by @DBOS.workflow() (and @DBOS.step()
for the steps), and declare it in services/common/workflow_types.py (name, queue, input schema):
the API then enqueues it by that declaration. Every module of this package is imported here,
which is what registers its workflows with DBOS, so the worker imports this package before
DBOS.launch(); `check_catalogue` then refuses to start a worker that lacks a declared workflow.
Put @instrumented (services.worker.instrumentation) directly under @DBOS.workflow() to get the
per-workflow metrics (docs/metrics.md).
"""

from __future__ import annotations

import importlib
import pkgutil

from dbos import DBOS

from services.common.dbos_internals import workflow_registry
from services.common.workflow_types import catalogue

# The workflow /api/schedules' schedules invoke; registered with the rest (and so part of the
# application version DBOS hashes from the registered workflows).
from services.worker import schedule_runner  # noqa: F401

# Sorted, so every replica registers the workflows in the same order.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")


def check_catalogue() -> None:
    """Raise unless a DBOS workflow is registered under the name of every declared type."""
    registered = set(workflow_registry().workflow_info_map)
    missing = [t.workflow_name for t in catalogue() if t.workflow_name not in registered]
    if missing:
        raise RuntimeError(
            f"declared workflow type(s) without a workflow in services/worker/workflows/: "
            f"{', '.join(missing)}"
        )


__all__ = ["DBOS", "check_catalogue"]
