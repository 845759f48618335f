"""Plumbing shared by the benchmarks: throwaway databases, child processes, timing and progress.

Everything runs against 127.0.0.1 only. Every database created here is dropped and every process
started here is stopped by `Bench.close()`, which `python -m bench` calls in a `finally`.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from services.api.routes.workflows import enqueue_request as enqueue_request
from services.api.validation import EnqueueRequest, parse_enqueue
from services.common.names import APP_NAME
from services.common.workflow_types import catalogue

# One implementation of the process, port and wait helpers, shared with the tests (bench runs
# from a checkout, where tests/ is a package); re-exported for the benchmark modules.
from tests.support import ChildProcess, cli_argv
from tests.support import free_port as free_port
from tests.support import wait_for as wait_for

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOOPBACK = "127.0.0.1"
DB_PREFIX = "qw_bench_"
_T0 = time.monotonic()


def progress(message: str) -> None:
    """One line on stderr with the time since the run started (stdout is for the table)."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of a non-empty sequence."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds of durations given in seconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": float(len(ms)),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
        "max_ms": max(ms) if ms else math.nan,
    }


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (peak resident set size) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def connect(
    url: str, *, autocommit: bool = False, timeout: float = 90.0
) -> psycopg.Connection[Any]:
    """psycopg.connect, retried while the server is out of connections (others share it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def url_with_db(url: str, database: str) -> str:
    return sa.make_url(url).set(database=database).render_as_string(hide_password=False)


def db_name(url: str) -> str:
    return str(sa.make_url(url).database)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Proc(ChildProcess):
    """A benchmark's child process (its own session): its peak RSS is read before it stops."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        super().__init__(name, argv, env, log_dir / f"{name}.log", new_session=True)
        self.peak_rss_mib: float | None = None
        self._terminated = False

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def sample_rss(self) -> float | None:
        if self.proc.poll() is None:
            value = peak_rss_mib(self.pid)
            if value is not None:
                self.peak_rss_mib = value
        return self.peak_rss_mib

    def terminate(self) -> None:
        """SIGTERM once: our worker treats a second signal as "exit now, skip the drain"."""
        if self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = 30.0) -> None:
        self.sample_rss()
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                tail = "\n    ".join(self.log().splitlines()[-8:])
                progress(
                    f"{self.name} ignored SIGTERM for {timeout}s; killing it. Log:\n    {tail}"
                )
        self.kill()


def service_argv(*args: str) -> list[str]:
    """`queue-worker <args>` with this interpreter (the project's venv)."""
    return [*cli_argv(), *args]


def module_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@dataclass
class Bench:
    """The run's context: admin connection, work directory, and everything to clean up."""

    admin_url: str
    workdir: Path
    quick: bool
    _template: str | None = None

    def __post_init__(self) -> None:
        host = sa.make_url(self.admin_url).host
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise SystemExit(f"bench: refusing a non-loopback database host {host!r}")
        self._databases: list[str] = []
        self._procs: list[Proc] = []
        self.rss: dict[str, float] = {}  # role -> max peak RSS (MiB) seen for that role

    # -- databases ---------------------------------------------------------------------------

    def admin_exec(self, sql: str) -> None:
        with connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def _template_name(self) -> str:
        if self._template is None:
            name = f"{DB_PREFIX}tmpl_{uuid.uuid4().hex[:8]}"
            self.admin_exec(f'CREATE DATABASE "{name}"')
            self._databases.append(name)
            # As the chart's migrations Job does: the dbos schema and this project's tables.
            subprocess.run(
                service_argv("migrate"),
                env={**os.environ, "DBOS_SYSTEM_DATABASE_URL": url_with_db(self.admin_url, name)},
                check=True,
                capture_output=True,
                timeout=120,
            )
            self._template = name
        return self._template

    def new_database(self, label: str) -> str:
        """A fresh database migrated by the pinned dbos (cloned from a migrated template)."""
        template = self._template_name()
        name = f"{DB_PREFIX}{label}_{uuid.uuid4().hex[:8]}"
        self.admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._databases.append(name)
        return url_with_db(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        name = db_name(url)
        self.admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._databases:
            self._databases.remove(name)

    def connection_headroom(self) -> int:
        """Client connections the server still accepts (others' tests share this server)."""
        with connect(self.admin_url) as conn:
            row = conn.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
                " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).fetchone()
        return int(row[0]) if row else 0

    def wait_for_connections(self, needed: int, timeout: float = 120.0) -> None:
        """Wait (bounded) until `needed` connections are free; warn and go on if they never are."""
        deadline = time.monotonic() + timeout
        said = False
        while (free := self.connection_headroom()) < needed:
            if time.monotonic() > deadline:
                progress(f"only {free} free connections (want {needed}); going on anyway")
                return
            if not said:
                progress(f"waiting for {needed} free Postgres connections (now {free})")
                said = True
            time.sleep(2.0)

    # -- processes ---------------------------------------------------------------------------

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> Proc:
        proc = Proc(name, argv, env, self.workdir)
        self._procs.append(proc)
        return proc

    def stop(self, proc: Proc, role: str | None = None) -> None:
        proc.stop()
        if role is not None and proc.peak_rss_mib is not None:
            self.rss[role] = max(self.rss.get(role, 0.0), proc.peak_rss_mib)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self, procs: Sequence[Proc], role: str | None = None) -> None:
        # SIGTERM every one first so their drains overlap, then wait for each.
        for proc in procs:
            proc.sample_rss()
            proc.terminate()
        for proc in procs:
            self.stop(proc, role)

    def close(self) -> None:
        for proc in list(self._procs):
            try:
                proc.stop(timeout=15)
            except Exception as exc:  # keep cleaning up
                progress(f"could not stop {proc.name}: {exc}")
        self._procs.clear()
        for name in list(reversed(self._databases)):
            try:
                self.admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error as exc:
                progress(f"could not drop database {name}: {exc}")
        self._databases.clear()

    # -- services ----------------------------------------------------------------------------

    def start_api(self, name: str, url: str, **env: str) -> tuple[Proc, int]:
        port = free_port()
        proc = self.start(
            name,
            service_argv("api", "--host", LOOPBACK, "--port", str(port)),
            {"DBOS_SYSTEM_DATABASE_URL": url, **env},
        )
        proc.wait_http_ok(f"http://{LOOPBACK}:{port}/readyz")
        return proc, port

    def start_workers(
        self,
        url: str,
        count: int,
        *,
        concurrency: int,
        polling_sec: float,
        bare: bool = False,
        trivial: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> list[Proc]:
        """Start `count` worker processes at once and wait until each listens to its queue.
        `trivial`: our worker with bench/trivial.py's workflow registered too (bare DBOS workers
        always have it)."""
        procs = []
        for i in range(count):
            worker_env = {
                "DBOS_SYSTEM_DATABASE_URL": url,
                "WORKER_CONCURRENCY": str(concurrency),
                "WORKER_POLLING_INTERVAL_SECONDS": str(polling_sec),
                "DBOS__VMID": f"bench-{'bare' if bare else 'worker'}-{i}",
                "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
                **(env or {}),
            }
            metrics = ("--metrics-host", LOOPBACK, "--metrics-port", str(free_port()))
            if bare:
                argv = module_argv("bench.bare_worker")
            elif trivial:
                argv = module_argv("bench.trivial_worker", "worker", *metrics)
            else:
                argv = service_argv("worker", *metrics)
            procs.append(
                self.start(f"{'bare' if bare else 'worker'}-{i}-{db_name(url)}", argv, worker_env)
            )
        for proc in procs:
            proc.wait_log("bare worker ready" if bare else "worker ready", timeout=90)
        return procs


def enqueue_client(url: str, pool_size: int = 10) -> Any:
    """A DBOSClient configured like the API's (same application name, pool size)."""
    from dbos import DBOSClient

    return DBOSClient(
        system_database_url=url, application_name=APP_NAME, system_database_pool_size=pool_size
    )


def api_request(num_steps: int, step_seconds: float) -> EnqueueRequest:
    """The demo request as POST /api/workflows parses it (validated, defaults filled in): with
    the API's own `enqueue_request` the benchmarks enqueue exactly what the API would."""
    return parse_enqueue({"num_steps": num_steps, "step_seconds": step_seconds}, catalogue())


def enqueue_backlog(
    url: str, count: int, *, num_steps: int, step_seconds: float, threads: int = 8
) -> float:
    """Enqueue `count` demo workflows as the API would; returns the seconds it took."""
    client = enqueue_client(url, pool_size=threads)
    request = api_request(num_steps, step_seconds)
    started = time.monotonic()
    try:

        def one(_: int) -> None:
            enqueue_request(client, request)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(count)))
    finally:
        client.destroy()
    return time.monotonic() - started
