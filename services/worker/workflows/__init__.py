"""Your workflows live here.

Add a module beside demo.py with functions decorated by @DBOS.workflow() (and @DBOS.step()
for the steps), import it below, and enqueue it from the API by its workflow name. Importing a
module is what registers its workflows with DBOS, so the worker imports this package before
DBOS.launch(). Put @instrumented (services.worker.instrumentation) directly under
@DBOS.workflow() to get the per-workflow metrics (docs/metrics.md).
"""

from services.worker.workflows import demo

__all__ = ["demo"]
