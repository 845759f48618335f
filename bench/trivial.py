"""A workflow that does nothing, for drain-rate benchmarks: DBOS's bookkeeping is its whole cost.

Registered by the bench's worker entry points only (bench/trivial_worker.py, bench/bare_worker.py);
the services never import it. Enqueued by name with DBOSClient, like the API's workflows.
"""

from __future__ import annotations

from dbos import DBOS

TRIVIAL_WORKFLOW = "bench_trivial"


@DBOS.workflow(name=TRIVIAL_WORKFLOW)
def trivial() -> None:
    return None
