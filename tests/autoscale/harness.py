"""The worker autoscaling loop reproduced on one machine: a real Prometheus, real worker processes,
and tests/autoscale/hpa.py playing the HorizontalPodAutoscaler controller. Not a cluster.

Each sync (the controller's --horizontal-pod-autoscaler-sync-period, scaled) the loop:
1. asks Prometheus for the external metric exactly as prometheus-adapter would: discover the
   series matching the adapter rule's seriesQuery, render its metricsQuery with the HPA's selector
   and namespace, convert each value to a milli-quantity (int64(value * 1000));
2. runs the controller's arithmetic on the current replica count;
3. starts worker processes or sends SIGTERM to the newest ones (as a ReplicaSet removes the
   youngest pods first), and rewrites Prometheus's file_sd target list;
4. publishes the HPA's state as kube-state-metrics would (kube_horizontalpodautoscaler_*), so the
   dashboards' "current vs desired" panels and the HPA alert read real series.

The HPA parameters come from the chart when charts/queue-worker exists and helm is available
(`helm template`), otherwise from deploy/prometheus-adapter/worker-hpa.yaml; `HpaSpec.source` says
which.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import httpx
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.autoscale.hpa import Decision, HpaController, HpaSpec, spec_from_manifest
from tests.metrics.prometheus import NAMESPACE, PrometheusServer
from tests.metrics.queries import adapter_rule, render_adapter_query
from tests.support import ServiceProcess, free_port

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "queue-worker"
DEPLOY_HPA = REPO / "deploy" / "prometheus-adapter" / "worker-hpa.yaml"


def find_helm() -> str | None:
    """HELM_BIN, then helm on PATH, then the copy scripts/test-deps.d/42-helm.sh caches."""
    explicit = os.environ.get("HELM_BIN")
    if explicit and os.access(explicit, os.X_OK):
        return explicit
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    cache = Path(os.environ.get("QW_CACHE", Path.home() / ".cache" / "queue-worker"))
    cached = cache / "bin" / "helm"
    return str(cached) if os.access(cached, os.X_OK) else None


def render_chart(helm: str, set_values: dict[str, str]) -> list[dict[str, Any]]:
    args = [helm, "template", "qw", str(CHART)]
    for key, value in set_values.items():
        args += ["--set", f"{key}={value}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load_hpa_spec(set_values: dict[str, str]) -> tuple[HpaSpec, list[dict[str, Any]]]:
    """The worker HPA as the chart renders it (with `set_values`), or the deploy/ default.

    Returns the spec and every rendered object (empty without the chart)."""
    helm = find_helm()
    if CHART.is_dir() and helm is not None:
        docs = render_chart(helm, set_values)
        hpas = [d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"]
        assert len(hpas) == 1, f"the chart rendered {len(hpas)} HorizontalPodAutoscalers"
        sets = " ".join(f"--set {k}={v}" for k, v in set_values.items())
        return spec_from_manifest(hpas[0], f"helm template {CHART.name} {sets}".strip()), docs
    why = "no chart at charts/queue-worker" if not CHART.is_dir() else "no helm binary"
    obj = yaml.safe_load(DEPLOY_HPA.read_text())
    return spec_from_manifest(obj, f"{DEPLOY_HPA.relative_to(REPO)} ({why})"), []


class KubeStateEmulator:
    """The kube_horizontalpodautoscaler_* series kube-state-metrics would export for our HPA."""

    def __init__(self, spec: HpaSpec) -> None:
        self.registry = CollectorRegistry()
        labels = ["namespace", "horizontalpodautoscaler"]
        self._values = (NAMESPACE, spec.name)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry)

        self.current = gauge("kube_horizontalpodautoscaler_status_current_replicas", "current")
        self.desired = gauge("kube_horizontalpodautoscaler_status_desired_replicas", "desired")
        gauge("kube_horizontalpodautoscaler_spec_min_replicas", "min").labels(*self._values).set(
            spec.min_replicas
        )
        gauge("kube_horizontalpodautoscaler_spec_max_replicas", "max").labels(*self._values).set(
            spec.max_replicas
        )
        # The HPA's labels, as kube-state-metrics exports them with the allowlist docs/metrics.md
        # asks for: the rules and dashboards find our HPA by these, not by its name.
        Gauge(
            "kube_horizontalpodautoscaler_labels",
            "labels",
            [
                *labels,
                *(f"label_app_kubernetes_io_{k}" for k in ("part_of", "component", "instance")),
            ],
            registry=self.registry,
        ).labels(*self._values, "queue-worker", "worker", "qw").set(1)
        # The metric is readable: ScalingActive is True (one series per status, 1 on the current).
        condition = Gauge(
            "kube_horizontalpodautoscaler_status_condition",
            "condition",
            [*labels, "condition", "status"],
            registry=self.registry,
        )
        for status, value in (("true", 1), ("false", 0), ("unknown", 0)):
            condition.labels(*self._values, "ScalingActive", status).set(value)
        self.port = free_port()
        self._server: WSGIServer | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def update(self, current: int, desired: int) -> None:
        self.current.labels(*self._values).set(current)
        self.desired.labels(*self._values).set(desired)

    def start(self) -> None:
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class Worker:
    name: str
    port: int
    proc: ServiceProcess
    started_at: float
    stop_sent_at: float | None = None
    exit_code: int | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


class WorkerPool:
    """Real `queue-worker worker` processes, one per replica, each with its own executor id."""

    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        prometheus: PrometheusServer | None,
        name_prefix: str = "hpa-worker",
    ) -> None:
        self.env = env
        self.workdir = workdir
        self.prometheus = prometheus
        self.prefix = name_prefix
        self.running: list[Worker] = []
        self.stopping: list[Worker] = []
        self.stopped: list[Worker] = []
        self._n = 0

    @property
    def replicas(self) -> int:
        """Like a Deployment's status.replicas: pods not terminating."""
        return len(self.running)

    def scale_to(self, n: int) -> None:
        while len(self.running) < n:
            self._start()
        while len(self.running) > n:
            self._stop(self.running[-1])
        self._publish_targets()

    def _start(self) -> None:
        name = f"{self.prefix}-{self._n}"
        self._n += 1
        port = free_port()
        proc = ServiceProcess(
            ["worker", "--metrics-host", "127.0.0.1", "--metrics-port", str(port)],
            {**self.env, "DBOS__VMID": name},
            self.workdir / f"{name}.log",
        )
        self.running.append(Worker(name, port, proc, time.monotonic()))

    def _stop(self, worker: Worker) -> None:
        self.running.remove(worker)
        worker.stop_sent_at = time.monotonic()
        if worker.proc.proc.poll() is None:
            worker.proc.proc.send_signal(signal.SIGTERM)
        self.stopping.append(worker)

    def kill(self, worker: Worker) -> None:
        """SIGKILL, as a node loss would: no drain, no hand-back."""
        self.running.remove(worker)
        worker.proc.kill()
        worker.exit_code = worker.proc.proc.returncode
        self.stopped.append(worker)
        self._publish_targets()

    def _publish_targets(self) -> None:
        if self.prometheus is not None:
            self.prometheus.set_worker_targets([w.target for w in self.running])

    def reap(self) -> None:
        for worker in list(self.stopping):
            code = worker.proc.proc.poll()
            if code is not None:
                worker.exit_code = code
                self.stopping.remove(worker)
                self.stopped.append(worker)
        for worker in self.running:
            if worker.proc.proc.poll() is not None:
                raise AssertionError(
                    f"{worker.name} exited on its own ({worker.proc.proc.returncode}):\n"
                    f"{worker.proc.log()[-3000:]}"
                )

    def ready_count(self) -> int:
        ready = 0
        for worker in self.running:
            try:
                ok = httpx.get(f"http://{worker.target}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ok = False
            ready += ok
        return ready

    def wait_stopped(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.stopping and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.1)
        for worker in self.stopping:
            worker.proc.kill()
        assert not self.stopping, f"{[w.name for w in self.stopping]} ignored SIGTERM"

    def close(self) -> None:
        """SIGTERM every worker still running and wait (kill what hangs): nothing left behind."""
        for worker in list(self.running):
            self._stop(worker)
        self._publish_targets()
        try:
            self.wait_stopped(timeout=60)
        finally:
            for worker in self.stopped:
                worker.proc.kill()  # closes the log file; the process has already exited

    def logs(self) -> list[str]:
        return [w.proc.log() for w in [*self.running, *self.stopping, *self.stopped]]


@dataclass
class Step:
    """One sync of the reproduced controller, for the test's assertions and the report."""

    at: float
    decision: Decision
    replicas_after: int
    ready: int | None = None


@dataclass
class ReproducedHpa:
    spec: HpaSpec
    prometheus: PrometheusServer
    pool: WorkerPool
    kube_state: KubeStateEmulator
    sync_period_sec: float
    namespace: str = NAMESPACE
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.controller = HpaController(self.spec)
        self.rule = adapter_rule(self.spec.metric_name)

    def adapter_queries(self) -> list[str]:
        """What the adapter would run now: one query per discovered series of the metric."""
        pattern = re.compile(self.rule.name_matches)
        names = [
            name
            for name in self.prometheus.series_names(self.rule.series_query)
            if pattern.search(name)
            and pattern.sub(self.rule.name_as, name) == self.spec.metric_name
        ]
        return [
            render_adapter_query(self.rule, name, self.spec.selector, self.namespace)
            for name in names
        ]

    def metric_values_milli(self) -> list[int] | None:
        queries = self.adapter_queries()
        if not queries:
            return None
        values = [int(s.value * 1000) for q in queries for s in self.prometheus.query(q)]
        return values or None

    def sync(self, now: float, *, check_ready: bool = False) -> Step:
        self.pool.reap()
        decision = self.controller.reconcile(now, self.pool.replicas, self.metric_values_milli())
        self.pool.scale_to(decision.desired)
        self.kube_state.update(self.pool.replicas, decision.desired)
        step = Step(
            now,
            decision,
            self.pool.replicas,
            self.pool.ready_count() if check_ready else None,
        )
        self.steps.append(step)
        return step

    def run(
        self, until: Callable[[Step], bool], timeout: float, *, check_ready: bool = False
    ) -> Step:
        """Sync every sync_period_sec until `until(step)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            started = time.monotonic()
            step = self.sync(started, check_ready=check_ready)
            if until(step):
                return step
            if started > deadline:
                raise AssertionError(
                    f"autoscaling did not reach the expected state in {timeout}s; last steps:\n"
                    + "\n".join(describe(s) for s in self.steps[-10:])
                )
            time.sleep(max(0.0, self.sync_period_sec - (time.monotonic() - started)))


def describe(step: Step) -> str:
    d = step.decision
    metric = "n/a" if d.metric_milli is None else f"{d.metric_milli / 1000:g}"
    ready = "" if step.ready is None else f" ready={step.ready}"
    return (
        f"t={d.at:.1f} metric={metric} current={d.current} raw={d.raw} desired={d.desired} "
        f"({d.reason}) replicas={step.replicas_after}{ready}"
    )


def finished_workflow_ids(logs: list[str]) -> list[str]:
    """Workflow ids from every "workflow finished" line of the workers' JSON logs."""
    ids = []
    for text in logs:
        for line in text.splitlines():
            if '"workflow finished"' not in line:
                continue
            record = json.loads(line)
            if record.get("message") == "workflow finished":
                ids.append(str(record["workflow_id"]))
    return ids
