"""Helpers shared by the test suites: real processes of the real CLI on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port that is free now and stays out of the way of outgoing connections.

    Port 0 would hand out an ephemeral port, and between this call and the service binding it,
    any outgoing connection on the machine (a database client, say) may take the same one: seen
    in CI as "address already in use". So pick below the ephemeral range, where the kernel never
    assigns client ports, and check it binds."""
    lo, _ = _ephemeral_range()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, lo - 12000), lo)
        if port in _handed_out:  # one test asks for several before any is bound
            continue
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll until predicate() is truthy; return its value or fail the test with `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


class ChildProcess:
    """One child process with its output captured to a log file (the tests' services and the
    benchmarks' processes alike). `new_session`: its own process group, so a Ctrl-C on the
    terminal reaches only the parent, which stops its children in order."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        *,
        new_session: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=new_session,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            )

    def wait_http_ok(self, url: str, timeout: float = 60.0) -> None:
        def ok() -> bool:
            self.check_alive()
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ok, timeout=timeout, what=f"{self.name}: {url} to answer 200")

    def wait_log(self, text: str, timeout: float = 60.0) -> None:
        def logged() -> bool:
            self.check_alive()
            return text in self.log()

        wait_for(logged, timeout=timeout, what=f"{self.name}: {text!r} in its log")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class ServiceProcess(ChildProcess):
    """One `queue-worker <command>` child process of this interpreter (the project's venv)."""

    def __init__(
        self, args: list[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None
    ) -> None:
        super().__init__(args[0], [*cli_argv(), *args], env, log_path, cwd)
        self.args = args

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; returns the exit code (kills and fails if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s") from None
        finally:
            self._log.close()


def cli_argv() -> list[str]:
    """`queue-worker` as this interpreter runs it."""
    return [sys.executable, "-m", "services.cli"]


SOURCE = Path(__file__).resolve().parents[1] / "services"


def fake_image(root: Path, tag: str, edit: Callable[[Path], None] | None = None) -> Path:
    """A copy of the services package standing in for the image `tag`: a worker started with
    `image=` the returned directory imports this copy (`python -m` puts its cwd first on
    sys.path, ahead of the editable install). `edit(package_dir)` changes the copy, e.g. a log
    line (same workflow code) or a workflow body (new workflow code)."""
    image = root / f"image-{tag}"
    shutil.copytree(SOURCE, image / "services", ignore=shutil.ignore_patterns("__pycache__"))
    init = image / "services" / "__init__.py"
    init.write_text(
        init.read_text().replace('__version__ = "', f'__version__ = "{tag}"  # was "', 1)
    )
    if edit is not None:
        edit(image / "services")
    return image


def edit_text(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must occur) with `new` in the file at `path`."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "DBOS_SYSTEM_DATABASE_URL": database_url,
        "LOG_FORMAT": "text",
        "WORKER_POLLING_INTERVAL_SECONDS": "0.2",
        "DEFAULT_STEP_SECONDS": "0.05",
        "METRICS_CACHE_SECONDS": "0",
    }
    env.update(extra)
    return env


class Stack:
    """A real API process and zero or more real worker processes sharing one database."""

    def __init__(self, database_url: str, workdir: Path, **env: str) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.env = service_env(database_url, **env)
        self.api_port = free_port()
        self.api: ServiceProcess | None = None
        self.workers: list[ServiceProcess] = []
        self.worker_ports: list[int] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_api(self) -> ServiceProcess:
        self.api = ServiceProcess(
            ["api", "--host", "127.0.0.1", "--port", str(self.api_port)],
            self.env,
            self.workdir / "api.log",
        )
        self.api.wait_http_ok(f"{self.base_url}/readyz")
        return self.api

    def start_worker(
        self, executor_id: str | None = None, *, image: Path | None = None, **env: str
    ) -> ServiceProcess:
        """A worker process; `image` (from fake_image) runs that copy of the code instead."""
        port = free_port()
        n = len(self.workers)
        worker_env = {**self.env, "DBOS__VMID": executor_id or f"test-worker-{n}", **env}
        worker = ServiceProcess(
            ["worker", "--metrics-host", "127.0.0.1", "--metrics-port", str(port)],
            worker_env,
            self.workdir / f"worker-{n}.log",
            cwd=image,
        )
        worker.wait_http_ok(f"http://127.0.0.1:{port}/healthz")
        # /healthz answers before DBOS has launched; wait for readiness and the queue registration.
        worker.wait_http_ok(f"http://127.0.0.1:{port}/readyz")
        wait_for(
            lambda: "worker ready" in worker.log(), timeout=60, what="the worker to launch DBOS"
        )
        self.workers.append(worker)
        self.worker_ports.append(port)
        return worker

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    def stop(self) -> None:
        for proc in [*self.workers, *([self.api] if self.api else [])]:
            if proc.proc.poll() is None:
                with contextlib.suppress(AssertionError):
                    proc.terminate(timeout=20)

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        """The API and one worker, stopped on the way out whatever happened."""
        try:
            self.start_api()
            self.start_worker()
            yield self
        finally:
            self.stop()


def enqueue(client: httpx.Client, num_steps: int, **fields: Any) -> str:
    resp = client.post("/api/workflows", json={"num_steps": num_steps, **fields})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["workflow_id"])


def wait_status(
    client: httpx.Client, workflow_id: str, statuses: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/workflows/{workflow_id}").json()
        return body if body.get("workflow_status") in statuses else None

    result: dict[str, Any] = wait_for(
        check, timeout=timeout, interval=0.1, what=f"{workflow_id} to reach {statuses}"
    )
    return result


def wait_steps(
    client: httpx.Client, workflow_id: str, at_least: int, timeout: float = 30.0
) -> dict[str, Any]:
    """Wait until the workflow reports at least `at_least` completed steps."""

    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/workflows/{workflow_id}").json()
        return body if (body.get("steps_completed") or 0) >= at_least else None

    result: dict[str, Any] = wait_for(
        check, timeout=timeout, interval=0.1, what=f"{workflow_id} to complete {at_least} step(s)"
    )
    return result
