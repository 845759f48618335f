"""A bare DBOS worker: the baseline our worker is compared against.

It launches DBOS with the same workflow code (services/worker/workflows/demo.py) and registers the
same queue with the same worker_concurrency and polling interval, and nothing else: no health or
metrics server, no JSON logging, no readiness or drain logic. DBOS settings other than the
queue's are left at their defaults (as a user of the seed would).

    DBOS_SYSTEM_DATABASE_URL=... WORKER_CONCURRENCY=10 WORKER_POLLING_INTERVAL_SECONDS=1 \
        python -m bench.bare_worker
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

from dbos import DBOS, DBOSConfig

import bench.trivial  # noqa: F401  (and the do-nothing one bench/wake.py drains)
import services.worker.workflows.demo  # noqa: F401  (registers the same workflow)
from services.common.names import APP_NAME, WORKFLOW_QUEUE


def main() -> None:
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": os.environ["DBOS_SYSTEM_DATABASE_URL"],
        # Same version and executor id rules as our worker, so both dequeue the same rows: the
        # same registered workflows hash to the same version unless DBOS__APPVERSION pins one.
        "application_version": os.environ.get("DBOS__APPVERSION") or None,
        "executor_id": os.environ.get("DBOS__VMID", "bare"),
    }
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue(
        WORKFLOW_QUEUE,
        worker_concurrency=int(os.environ.get("WORKER_CONCURRENCY", "10")),
        polling_interval_sec=float(os.environ.get("WORKER_POLLING_INTERVAL_SECONDS", "1.0")),
    )
    print("bare worker ready", flush=True)
    received: list[int] = []

    # The handler only records the signal. Event.set() from a handler can deadlock: a second
    # signal may run it while the main thread, just woken by the first, holds the Event's lock.
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not received:
        time.sleep(0.1)
    DBOS.destroy(workflow_completion_timeout_sec=5)
    os._exit(0)


if __name__ == "__main__":
    main()
