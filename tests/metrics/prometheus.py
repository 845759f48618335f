"""A real Prometheus for the tests: our own config and storage, on 127.0.0.1, stopped by PID.

It loads the chart's rule files (charts/queue-worker/files/prometheus/) as they are, scrapes
static targets (the API replicas) and a file_sd list that the tests rewrite as workers come and
go (Prometheus watches the file, so a new worker is scraped within a second). Every target gets
the static label `namespace`, as a Kubernetes service discovery would add, so the rules and the
adapter's namespaced query run exactly as in a cluster.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from tests.support import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "charts" / "queue-worker" / "files" / "prometheus"
NAMESPACE = "qw-test"


def rule_files() -> list[Path]:
    """The rule files the chart ships, files/prometheus/*.yaml (tests/ holds their unit tests)."""
    files = sorted(RULES_DIR.glob("*.yaml"))
    assert files, f"no rule files in {RULES_DIR}"
    return files


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(
            f"{name} is not installed: run scripts/test-deps.sh "
            "(apt-get install -y --no-install-recommends prometheus)"
        )
    return found


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusServer:
    def __init__(
        self,
        workdir: Path,
        *,
        static_jobs: dict[str, list[str]],
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.targets_path = workdir / "workers.json"
        self.log_path = workdir / "prometheus.log"
        self.set_worker_targets([])
        scrape_configs: list[dict[str, Any]] = [
            {
                "job_name": job,
                "static_configs": [{"targets": targets, "labels": {"namespace": NAMESPACE}}],
            }
            for job, targets in static_jobs.items()
        ]
        scrape_configs.append(
            {
                "job_name": "queue-worker-worker",
                "file_sd_configs": [{"files": [str(self.targets_path)], "refresh_interval": "1s"}],
            }
        )
        config = {
            "global": {
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "evaluation_interval": evaluation_interval,
            },
            "rule_files": [str(p) for p in rule_files()],
            "scrape_configs": scrape_configs,
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_worker_targets(self, targets: Sequence[str]) -> None:
        """Rewrite the file_sd list atomically (Prometheus must never read half a file)."""
        entries = (
            [{"targets": list(targets), "labels": {"namespace": NAMESPACE}}] if targets else []
        )
        tmp = self.targets_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries))
        tmp.replace(self.targets_path)

    def check_config(self) -> str:
        result = subprocess.run(
            [binary("promtool"), "check", "config", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("wb")
        self._log = log
        self._proc = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=timeout, interval=0.2, what="prometheus to be ready")

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        resp = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        body = resp.json()
        if resp.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {resp.status_code} {body}")
        return body["data"]

    def query(self, expr: str) -> list[Sample]:
        """An instant query; a vector (or scalar) as samples. Fails on a PromQL error."""
        data = self._get("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise AssertionError(f"{expr}: unexpected result type {data['resultType']}")
        return [Sample(r["metric"], float(r["value"][1])) for r in data["result"]]

    def series_names(self, match: str) -> list[str]:
        """Names of the series matching a selector now (what the adapter's discovery lists)."""
        now = time.time()
        data = self._get(
            "/api/v1/series", {"match[]": match, "start": str(now - 60), "end": str(now)}
        )
        return sorted({s["__name__"] for s in data})

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self._get(f"/api/v1/label/{label}/values", {"match[]": match})
        return values

    def targets_up(self, job: str) -> int:
        return len(self.query(f'up{{job="{job}"}} == 1'))

    def rule_health(self) -> list[dict[str, Any]]:
        groups = self._get("/api/v1/rules", {})["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts", {})["alerts"]
        return alerts
