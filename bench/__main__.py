"""`python -m bench [--quick] [--only SECTION ...]`: run the benchmarks and print a table of ratios.

Sections: enqueue, list (with /metrics), workers, latency (with the idle worker's database cost),
wake (wake-ups on enqueue and on completion, beside bare DBOS and procrastinate), pools (the
worker's DBOS pool at its default size vs the earlier concurrency + 5), pooler
(PgBouncer in session mode against direct connections; needs pgbouncer), streams (live streams:
database cost with 1 vs 100 open, progress delay).
Needs the machine's Postgres (BENCH_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/
postgres; loopback only) and wrk. Progress goes to stderr, the table to stdout; results are
written to bench/results/<full|quick>.json and .md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from bench import enqueue, latency, listing, pool_size, pooler, report, streams, wake, workers
from bench.common import DEFAULT_ADMIN_URL, Bench, progress

SECTIONS = {
    "enqueue": enqueue.run,
    "list": listing.run,
    "workers": workers.run,
    "latency": latency.run,
    "wake": wake.run,
    "pools": pool_size.run,
    "pooler": pooler.run,
    "streams": streams.run,
}
ROOT = Path(__file__).resolve().parent.parent


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head or "unknown"


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _meta(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    from importlib.metadata import version

    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "mode": "quick" if args.quick else "full",
        "command": " ".join([".venv/bin/python -m bench", *sys.argv[1:]]),
        "argv": sys.argv[1:],
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _git_commit(),
        "cpus": os.cpu_count(),
        "loadavg_start": _loadavg(),
        "postgres": f"PostgreSQL {row[0] if row else '?'}",
        "dbos": version("dbos"),
        "python": platform.python_version(),
        "sections": args.only or list(SECTIONS),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, shorter run (~4 min)")
    parser.add_argument(
        "--only", action="append", choices=list(SECTIONS), help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="where results are written"
    )
    args = parser.parse_args(argv)
    admin_url = os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL)
    if (not args.only or "enqueue" in args.only) and shutil.which("wrk") is None:
        print("bench: wrk is missing; install it with `apt-get install -y wrk`", file=sys.stderr)
        return 2
    try:
        meta = _meta(args, admin_url)
    except psycopg.Error as exc:
        print(f"bench: cannot reach Postgres at {admin_url}: {exc}", file=sys.stderr)
        return 2

    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="qw-bench-"))
    bench = Bench(admin_url, workdir, args.quick)
    results: dict[str, Any] = {"meta": meta}
    started = time.monotonic()
    ok = False
    try:
        for name in args.only or list(SECTIONS):
            progress(f"== {name}")
            results[name] = SECTIONS[name](bench)
        ok = True
    except KeyboardInterrupt:
        progress("interrupted: stopping processes and dropping databases")
        return 130
    finally:
        bench.close()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            progress(f"process logs kept in {workdir}")
    results["peak_rss_mib"] = bench.rss
    meta["duration_s"] = time.monotonic() - started
    meta["loadavg_end"] = _loadavg()
    rows = report.build_rows(results)
    print(report.text_table(rows))
    stem = "quick" if args.quick else "full"
    if args.only:
        stem += "-" + "-".join(args.only)
    paths = report.write(args.out, stem, results, rows)
    progress(f"done in {meta['duration_s']:.0f}s; wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
