"""`queue-worker dev`: the API and one worker on one machine, as two child processes.

Two processes, as in production, so dev exercises the same code paths (the API never imports the
worker). Ctrl-C (or SIGTERM) is forwarded as SIGTERM to both; each shuts down gracefully within a
few seconds, and anything still alive after that is killed, so no process is left behind. The
children also die with the supervisor if it is killed outright (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from types import FrameType

from services.common.logs import configure_logging
from services.common.migrate import migrate
from services.common.settings import Settings

log = logging.getLogger("queue_worker.dev")

# Dev defaults that differ from production; an explicit environment variable still wins.
DEV_ENV_DEFAULTS = {
    "LOG_FORMAT": "text",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "3",
}
STOP_TIMEOUT_SEC = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which then stops the
        # children once, in order, instead of each receiving a stray second signal.
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (our own loopback URL)
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _metrics_port(wanted: int | None) -> int:
    """The worker's health/metrics port: the one asked for, else 9000 if it is free, else any free
    port, so a second `queue-worker dev --port 8766` beside a running one still starts."""
    if wanted is not None:
        return wanted
    for candidate in (9000, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    return 9000  # pragma: no cover - port 0 always binds


def run_dev(settings: Settings, *, host: str, port: int, metrics_port: int | None) -> int:
    env = {**DEV_ENV_DEFAULTS, **os.environ}
    configure_logging(settings.log_level, env["LOG_FORMAT"], "dev")
    metrics_port = _metrics_port(metrics_port)
    if migrate(settings) != 0:
        return 1
    configure_logging(settings.log_level, env["LOG_FORMAT"], "dev")

    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children = {
        "worker": _spawn(
            ["worker", "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port)], env
        ),
        "api": _spawn(["api", "--host", host, "--port", str(port)], env),
    }
    shown_host = "localhost" if host in {"127.0.0.1", "0.0.0.0"} else host  # noqa: S104
    if _wait_ready(f"http://127.0.0.1:{port}/readyz", children["api"], timeout=60):
        log.info(
            f"queue-worker is running: open http://{shown_host}:{port} (Ctrl-C stops it);"
            f" worker health and metrics on 127.0.0.1:{metrics_port}"
        )

    exit_code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                log.error(f"{name} exited unexpectedly with status {proc.returncode}")
                stopping, exit_code = True, 1
        time.sleep(0.2)

    log.info("stopping the API and the worker")
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SEC
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning(f"{name} did not stop in {STOP_TIMEOUT_SEC:g}s; killing it")
            proc.kill()
            proc.wait()
    log.info("stopped")
    return exit_code
