"""The procrastinate side of bench/wake.py: a trivial task, its worker, and ways to defer it.

Runs with the interpreter of a separate venv (.venv-procrastinate, made by bench/wake.py with
`pip install procrastinate`), never the project's: procrastinate is no dependency of this project.
It imports nothing from the project.

    python bench/procrastinate_app.py URL schema           # apply procrastinate's schema
    python bench/procrastinate_app.py URL defer N          # N jobs, one defer (transaction) each
    python bench/procrastinate_app.py URL arrivals SECONDS RATE   # Poisson arrivals, one by one
    python bench/procrastinate_app.py URL worker CONCURRENCY      # LISTEN/NOTIFY on (its default)

Timings are read afterwards from procrastinate_events (deferred / started / succeeded, each
stamped with the database's now() of its transaction).
"""

from __future__ import annotations

import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import procrastinate

QUEUE = "bench"


def make_app(url: str) -> procrastinate.App:
    return procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=url))


def make_worker_app(url: str) -> procrastinate.App:
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))


def register(app: procrastinate.App) -> procrastinate.tasks.Task:
    # async: procrastinate runs sync tasks one at a time per worker unless told otherwise, and
    # its docs say concurrency is for async tasks. The task does nothing either way.
    @app.task(name="trivial", queue=QUEUE)
    async def trivial() -> None:
        return None

    return trivial


def main(argv: list[str]) -> int:
    url, command, *rest = argv
    if command == "worker":
        app = make_worker_app(url)
        register(app)
        print("procrastinate worker ready", flush=True)
        app.run_worker(queues=[QUEUE], concurrency=int(rest[0]), listen_notify=True, wait=True)
        return 0
    app = make_app(url)
    task = register(app)
    with app.open():
        if command == "schema":
            app.schema_manager.apply_schema()
        elif command == "defer":
            count = int(rest[0])
            # Eight threads, like bench/common.py's enqueue_backlog for DBOS.
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _: task.defer(), range(count)))
        elif command == "arrivals":
            seconds, rate = float(rest[0]), float(rest[1])
            rng = random.Random(7)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(rng.expovariate(rate))
                task.defer()
        else:
            print(f"unknown command {command!r}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
