"""The two images, built and run for real: migrate, the API and two workers as containers.

Everything runs with --network host against the machine's Postgres on loopback (a fresh database,
dropped after). The containers run the way the Helm chart runs them: non-root, read-only root
filesystem with a tmpfs /tmp, no capabilities, no privilege escalation.

Needs a Docker engine and the base image: scripts/test-deps.d/40-docker.sh and
41-python-base-image.sh. QW_BASE_IMAGE picks another base (default local/python-base).
Select with `pytest -m containers`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from tests.support import enqueue, free_port, wait_for, wait_status

pytestmark = [pytest.mark.containers, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("QW_BASE_IMAGE", "local/python-base")
API_IMAGE = "queue-worker-api:test"
WORKER_IMAGE = "queue-worker-worker:test"
APP_UID = "10001"
# Short on purpose: the drain test below must finish well inside it.
GRACE_SECONDS = 20
# The chart's margin between WORKER_SHUTDOWN_GRACE_SECONDS and terminationGracePeriodSeconds.
STOP_MARGIN_SECONDS = 15
# Far above today's ~230 MB; trips if a compiler, a second Python or the build venv leaks in.
MAX_IMAGE_BYTES = 400 * 1024 * 1024


def _docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def _report(config: pytest.Config, line: str) -> None:
    """Write a line to the terminal even when output is captured (build times, image sizes)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    seconds: float
    size_bytes: int
    inspect: dict[str, object]


@pytest.fixture(scope="module")
def images(request: pytest.FixtureRequest) -> dict[str, BuiltImage]:
    if shutil.which("docker") is None or _docker("info", check=False).returncode != 0:
        pytest.fail("no Docker engine answers: run scripts/test-deps.d/40-docker.sh")
    if _docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"no base image {BASE_IMAGE}: run scripts/test-deps.d/41-python-base-image.sh")
    built: dict[str, BuiltImage] = {}
    for name, dockerfile, tag in (
        ("api", "Dockerfile.api", API_IMAGE),
        ("worker", "Dockerfile.worker", WORKER_IMAGE),
    ):
        started = time.monotonic()
        _docker(
            "build",
            "--network", "host",
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "-f", str(ROOT / dockerfile),
            "-t", tag,
            str(ROOT),
            timeout=900,
        )  # fmt: skip
        seconds = time.monotonic() - started
        inspect = json.loads(_docker("image", "inspect", tag).stdout)[0]
        image = BuiltImage(tag, seconds, int(inspect["Size"]), inspect)
        built[name] = image
        _report(
            request.config,
            f"[images] {tag}: built in {seconds:.1f}s, {image.size_bytes / 1e6:.0f} MB",
        )
    return built


@pytest.mark.parametrize("name", ["api", "worker"])
def test_image_runs_as_fixed_non_root_uid_with_exec_entrypoint(
    images: dict[str, BuiltImage], name: str
) -> None:
    config = images[name].inspect["Config"]
    assert isinstance(config, dict)
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    # Exec form: the entrypoint is the process itself (PID 1 gets SIGTERM), not `sh -c`.
    assert config["Entrypoint"] == ["/opt/venv/bin/queue-worker"]
    assert config["Cmd"][0] == name
    assert images[name].size_bytes < MAX_IMAGE_BYTES


@pytest.mark.parametrize("name", ["api", "worker"])
def test_image_has_no_compiler_and_only_its_own_service(
    images: dict[str, BuiltImage], name: str
) -> None:
    other = "worker" if name == "api" else "api"
    script = (
        "import importlib.util, shutil, sys\n"
        # The operator commands both images run (migrate: the Job; recover: kubectl exec).
        "import services.common.migrate, services.common.recover\n"
        "compilers = [c for c in ('gcc', 'cc', 'c++', 'clang', 'make') if shutil.which(c)]\n"
        f"own = importlib.util.find_spec('services.{name}') is not None\n"
        f"other = importlib.util.find_spec('services.{other}') is not None\n"
        "print(compilers, own, other)\n"
        "sys.exit(0 if (not compilers and own and not other) else 1)\n"
    )
    proc = _docker(
        "run", "--rm", "--network", "none", "--entrypoint", "python3", images[name].tag,
        "-c", script, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"compilers, own service, other service: {proc.stdout}"


# --------------------------------------------------------------------------------------------
# A real stack of containers against a fresh Postgres database.


@dataclass
class Containers:
    """The containers this test started (and only those): removed by id at the end."""

    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    ids: dict[str, str] = field(default_factory=dict)

    def run(self, role: str, image: str, env: dict[str, str], *args: str) -> str:
        env_args = [a for key, value in env.items() for a in ("-e", f"{key}={value}")]
        proc = _docker(
            "run", "--detach", "--name", f"qw-test-{role}-{self.suffix}",
            "--network", "host",
            # What the chart's securityContext enforces in a cluster.
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--user", f"{APP_UID}:{APP_UID}",
            *env_args, image, *args,
        )  # fmt: skip
        self.ids[role] = proc.stdout.strip()
        return self.ids[role]

    def logs(self, role: str) -> str:
        proc = _docker("logs", self.ids[role], check=False)
        return proc.stdout + proc.stderr

    def running(self, role: str) -> bool:
        state = _docker("inspect", "-f", "{{.State.Running}}", self.ids[role], check=False)
        return state.stdout.strip() == "true"

    def wait_http_ok(self, role: str, url: str, timeout: float = 90) -> None:
        def ok() -> bool:
            if not self.running(role):
                raise AssertionError(f"{role} container exited:\n{self.logs(role)[-3000:]}")
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ok, timeout=timeout, interval=0.2, what=f"{role}: {url} to answer 200")

    def remove_all(self) -> None:
        for container_id in self.ids.values():
            _docker("rm", "--force", container_id, check=False)


@pytest.fixture
def fresh_database(pg_admin_url: str) -> Iterator[str]:
    """An empty database (not migrated: the migrate container does that), dropped after."""
    name = f"qw_containers_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = sa.make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def containers() -> Iterator[Containers]:
    started = Containers()
    yield started
    started.remove_all()


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "DBOS_SYSTEM_DATABASE_URL": database_url,
        "LOG_FORMAT": "json",
        "WORKER_POLLING_INTERVAL_SECONDS": "0.2",
        "METRICS_CACHE_SECONDS": "0",
        **extra,
    }


def test_stack_of_containers_runs_and_drains_a_stopped_worker(
    images: dict[str, BuiltImage],
    fresh_database: str,
    containers: Containers,
    request: pytest.FixtureRequest,
) -> None:
    # 1. Migrations, as the chart's Job runs them: exit 0, twice (the second is a no-op).
    for attempt in (1, 2):
        proc = _docker(
            "run", "--rm", "--network", "host", "--read-only", "--tmpfs", "/tmp",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-e", f"DBOS_SYSTEM_DATABASE_URL={fresh_database}",
            images["worker"].tag, "migrate",
            timeout=180, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"migrate #{attempt}:\n{proc.stdout}\n{proc.stderr}"

    # 2. The API and two workers (RUN_MIGRATIONS=false and one app version, as the chart sets).
    api_port = free_port()
    containers.run(
        "api", images["api"].tag, _env(fresh_database),
        "api", "--host", "127.0.0.1", "--port", str(api_port),
    )  # fmt: skip
    worker_ports: dict[str, int] = {}
    for n in (0, 1):
        role = f"worker-{n}"
        worker_ports[role] = free_port()
        containers.run(
            role,
            images["worker"].tag,
            _env(
                fresh_database,
                DBOS__VMID=f"{role}-{containers.suffix}",
                DBOS__APPVERSION="test",
                RUN_MIGRATIONS="false",
                WORKER_CONCURRENCY="2",
                WORKER_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
            ),
            "worker", "--metrics-host", "127.0.0.1", "--metrics-port", str(worker_ports[role]),
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{api_port}"
    containers.wait_http_ok("api", f"{base_url}/readyz")
    for role, port in worker_ports.items():
        containers.wait_http_ok(role, f"http://127.0.0.1:{port}/readyz")
        wait_for(
            lambda role=role: "worker ready" in containers.logs(role),  # type: ignore[misc]
            timeout=60,
            what=f"{role} to launch DBOS",
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert metrics.status_code == 200

    with httpx.Client(base_url=base_url, timeout=30) as http:
        # 3. A workflow enqueued over HTTP completes.
        first = enqueue(http, 2, step_seconds=0.1)
        done = wait_status(http, first, {"SUCCESS", "ERROR"}, timeout=60)
        assert done["workflow_status"] == "SUCCESS", done
        assert done["steps_completed"] == 2
        assert done["executor_id"] in {f"{role}-{containers.suffix}" for role in worker_ports}
        assert "queue_worker_queue_depth" in http.get("/metrics").text
        # The web page and its static files are in the API image.
        page = http.get("/")
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        assert http.get("/openapi.json").status_code == 200
        for asset in ("/static/app.js", "/static/style.css"):
            assert http.get(asset).status_code == 200, asset

        # 4. Busy workers: 4 workflows of ~4 s, at most 2 per worker.
        busy = [enqueue(http, 8, step_seconds=0.5) for _ in range(4)]

        def running_with_progress() -> dict[str, object] | None:
            for wf in busy:
                body: dict[str, object] = http.get(f"/api/workflows/{wf}").json()
                steps = body.get("steps_completed")
                if body["workflow_status"] == "PENDING" and isinstance(steps, int) and steps >= 1:
                    return body
            return None

        victim: dict[str, object] = wait_for(
            running_with_progress, timeout=60, what="a workflow to be running on some worker"
        )
        executor = str(victim["executor_id"])
        role = executor.removesuffix(f"-{containers.suffix}")
        in_flight = [
            wf
            for wf in busy
            if (body := http.get(f"/api/workflows/{wf}").json())["workflow_status"] == "PENDING"
            and body["executor_id"] == executor
        ]
        assert in_flight, "the chosen worker has nothing in flight"

        # 5. `docker stop` (SIGTERM, SIGKILL after grace + margin, as the chart's
        # terminationGracePeriodSeconds): it drains, exits 0 within its grace period.
        started = time.monotonic()
        _docker(
            "stop", "-t", str(GRACE_SECONDS + STOP_MARGIN_SECONDS), containers.ids[role],
            timeout=GRACE_SECONDS + STOP_MARGIN_SECONDS + 30,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        exit_code = _docker("inspect", "-f", "{{.State.ExitCode}}", containers.ids[role]).stdout
        logs = containers.logs(role)
        assert exit_code.strip() == "0", f"{role} exited with {exit_code}:\n{logs[-3000:]}"
        assert elapsed < GRACE_SECONDS, f"{role} took {elapsed:.1f}s to stop"
        assert "draining" in logs
        _report(
            request.config,
            f"[containers] docker stop {role}: exit 0 after {elapsed:.1f}s "
            f"(grace {GRACE_SECONDS}s), {len(in_flight)} in-flight workflow(s) drained",
        )

        # Its in-flight work finished on it (drained, not abandoned or redone elsewhere).
        for wf in in_flight:
            body = http.get(f"/api/workflows/{wf}").json()
            assert body["workflow_status"] == "SUCCESS", body
            assert body["steps_completed"] == 8
            assert body["executor_id"] == executor

        # 6. The other worker finishes the rest and takes new work.
        for wf in busy:
            assert wait_status(http, wf, {"SUCCESS"}, timeout=60)["steps_completed"] == 8
        after = enqueue(http, 1, step_seconds=0.1)
        last = wait_status(http, after, {"SUCCESS", "ERROR"}, timeout=60)
        assert last["workflow_status"] == "SUCCESS"
        assert last["executor_id"] != executor
