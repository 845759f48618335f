"""Print load figures: throughput, enqueue latency percentiles, errors, drain and exactly-once.

    .venv/bin/python -m tests.load.run_load                      # 60 req/s for 20 s, 2 workers
    .venv/bin/python -m tests.load.run_load --rate 100 --duration 30
    .venv/bin/python -m tests.load.run_load --database sqlite

Starts the real API and workers on 127.0.0.1 against a fresh, migrated Postgres database (created
on TEST_DATABASE_URL, else the local server, and dropped afterwards), or a SQLite file in a
temporary directory. Exits 1 if any request failed or any workflow did not run exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa
from dbos import DBOS

from tests.conftest import LOCAL_ADMIN_URL
from tests.load.loadgen import LoadPlan, enqueue_at_rate, report, start_stack, wait_for_drain


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'load.sqlite'}"
        DBOS.migrate(url)
        yield url
        return
    admin = os.environ.get("TEST_DATABASE_URL") or LOCAL_ADMIN_URL
    name = f"qw_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = sa.make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        DBOS.migrate(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print load figures for queue-worker.")
    parser.add_argument("--rate", type=float, default=60.0, help="enqueues per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--num-steps", type=int, default=2)
    parser.add_argument("--step-seconds", type=float, default=0.02)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 2000 and 0 < args.duration <= 600 and 1 <= args.workers <= 8):
        parser.error("keep it bounded: rate 0-2000, duration 0-600 s, 1-8 workers")
    plan = LoadPlan(
        rate=args.rate,
        duration=args.duration,
        num_steps=args.num_steps,
        step_seconds=args.step_seconds,
    )
    with (
        tempfile.TemporaryDirectory(prefix="qw-load-") as tmp,
        fresh_database(args.database, Path(tmp)) as url,
    ):
        stack = start_stack(url, Path(tmp), workers=args.workers)
        try:
            sent = enqueue_at_rate(stack.base_url, plan)
            drain = wait_for_drain(stack, sent, plan)
        finally:
            stack.stop()
    print(f"database       {args.database}, {args.workers} worker(s)")
    print(report(plan, sent, drain))
    ok = sent.error_count == 0 and drain.drained and not drain.not_once
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
