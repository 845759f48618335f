"""A release that changes the workflow code: the old version's work finishes on workers of the old
version, started and retired by the drainer with no operator step (issue 10, point 2).

Real processes throughout: the API, the workers of image 1.0.0 and 2.0.0 (two copies of the code
whose workflow function differs, so DBOS computes two versions), and `queue-worker drainer`,
talking to tests/integration/fake_kube.py, whose Kubelet runs the pods of the chart-rendered worker
Deployment and of the drain Deployment the drainer creates from it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chart.helm import Obj, name, render
from tests.integration.fake_kube import FakeKube, Kubelet
from tests.integration.test_releases import NUM_STEPS, STEP_SECONDS, new_workflow_code
from tests.support import (
    ServiceProcess,
    Stack,
    enqueue,
    fake_image,
    free_port,
    wait_for,
    wait_status,
    wait_steps,
)

pytestmark = [pytest.mark.chart]

NAMESPACE = "queue"
FAST = {
    "LOG_FORMAT": "text",
    "WORKER_POLLING_INTERVAL_SECONDS": "0.2",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "2",
    "WORKER_HEARTBEAT_SECONDS": "0.3",
    "WORKER_DEAD_AFTER_SECONDS": "1.5",
    "WORKER_RECOVERY_SWEEP_SECONDS": "0.5",
}
_SERIES = re.compile(
    r'^queue_worker_queue_(depth|in_flight)_by_version\{app_version="([^"]+)",queue="([^"]+)"\} '
    r"(\S+)$",
    re.M,
)


def worker_deployment(tag: str) -> Obj:
    """The chart's worker Deployment for image tag `tag` (autoscaling off: one replica)."""
    rendered = render(
        set_values={
            "worker.image.tag": tag,
            "worker.autoscaling.enabled": "false",
            "worker.replicas": "1",
        }
    )
    return rendered.get("Deployment", name("worker"))


def version_of(port: int) -> str:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    match = re.search(r'queue_worker_worker_info\{app_version="([^"]+)"', text)
    assert match, text[:1000]
    return match.group(1)


def by_version(api_url: str) -> dict[str, int]:
    """ENQUEUED + PENDING per application version, from the API's /metrics."""
    out: dict[str, int] = {}
    for _, version, _, value in _SERIES.findall(httpx.get(f"{api_url}/metrics").text):
        out[version] = out.get(version, 0) + int(float(value))
    return out


def test_old_version_work_finishes_on_old_version_workers_the_drainer_starts_and_retires(
    pg_url: str, tmp_path: Path
) -> None:
    images = {
        "queue-worker-worker:1.0.0": fake_image(tmp_path, "1.0.0"),
        "queue-worker-worker:2.0.0": fake_image(tmp_path, "2.0.0", new_workflow_code),
    }
    stack = Stack(pg_url, tmp_path, METRICS_CACHE_SECONDS="0")
    drainer: ServiceProcess | None = None
    with FakeKube(NAMESPACE) as kube:
        kubelet = Kubelet(
            kube,
            images,
            secrets={"DBOS_SYSTEM_DATABASE_URL": pg_url},
            workdir=tmp_path,
            env_overrides=FAST,
        )
        try:
            stack.start_api()
            kube.put(worker_deployment("1.0.0"))
            kubelet.sync()
            (old_pod,) = kubelet.all_pods()
            v1 = version_of(old_pod.port)
            with stack.client() as http:
                old = [enqueue(http, NUM_STEPS, step_seconds=STEP_SECONDS) for _ in range(3)]
                for wf in old:
                    wait_steps(http, wf, 1)

                # helm upgrade to 2.0.0: the new pod is ready, then the old one drains for 2 s
                # and hands back what it could not finish, under its version.
                kube.put(worker_deployment("2.0.0"))
                kubelet.sync()
                (new_pod,) = kubelet.all_pods()
                assert "handed back unfinished workflows" in old_pod.process.log()
                v2 = version_of(new_pod.port)
                assert v1 != v2

                # Without the drainer nothing runs them: workers only dequeue their own version.
                time.sleep(3)
                for wf in old:
                    body = http.get(f"/api/workflows/{wf}").json()
                    assert (body["workflow_status"], body["app_version"]) == ("ENQUEUED", v1)
                assert by_version(stack.base_url)[v1] == 3

                # New work goes to the new version.
                fresh = [enqueue(http, 3, step_seconds=0.05) for _ in range(2)]
                for wf in fresh:
                    done = wait_status(http, wf, {"SUCCESS", "ERROR"}, timeout=60)
                    assert (done["workflow_status"], done["app_version"]) == ("SUCCESS", v2)
                    assert done["executor_id"] == new_pod.name

                metrics_port = free_port()
                drainer = ServiceProcess(
                    ["drainer", "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port)],
                    {
                        **stack.env,
                        **FAST,
                        "KUBERNETES_API_URL": kube.url,
                        "POD_NAMESPACE": NAMESPACE,
                        "WORKER_DEPLOYMENT": name("worker"),
                        "DRAIN_INTERVAL_SECONDS": "0.5",
                    },
                    tmp_path / "drainer.log",
                )
                drain_name = ""

                def old_ones_done() -> list[dict[str, Any]] | None:
                    nonlocal drain_name
                    kubelet.sync()
                    drains = [n for n in kube.snapshot() if "-drain-" in n]
                    drain_name = drain_name or (drains[0] if drains else "")
                    bodies = [http.get(f"/api/workflows/{wf}").json() for wf in old]
                    if all(b["workflow_status"] in {"SUCCESS", "ERROR"} for b in bodies):
                        return bodies
                    return None

                started = time.monotonic()
                bodies = wait_for(old_ones_done, timeout=120, interval=0.2, what="the drain")
                drain_sec = time.monotonic() - started
                for body in bodies:
                    assert body["workflow_status"] == "SUCCESS", body
                    assert body["steps_completed"] == NUM_STEPS
                    assert body["app_version"] == v1
                    assert body["executor_id"].startswith(f"{drain_name}-"), body
                # The old version's backlog is gone from the per-version gauges.
                wait_for(
                    lambda: by_version(stack.base_url).get(v1, 0) == 0,
                    timeout=10,
                    what="the old version's gauges to reach zero",
                )

                # Then the drainer removes the old version's workers.
                def retired() -> bool:
                    kubelet.sync()
                    return drain_name not in kube.snapshot() and drain_name not in kubelet.pods

                wait_for(retired, timeout=60, interval=0.2, what="the drain Deployment to go")
                retire_sec = time.monotonic() - started
                assert kube.calls == [("create", drain_name), ("delete", drain_name)]
                (drain_pod,) = [p for p in kubelet.ended if p.name.startswith(drain_name)]
                assert drain_pod.process.proc.returncode == 0
                assert "worker ready" in drain_pod.process.log()
                # Only the new version's worker is left, and it never ran the old version's work.
                assert [p.name for p in kubelet.all_pods()] == [new_pod.name]
                print(
                    f"drainer started: old workflows done after {drain_sec:.1f}s, "
                    f"drain Deployment gone after {retire_sec:.1f}s"
                )
        finally:
            if drainer is not None:
                drainer.terminate(timeout=20)
            kubelet.stop_all()
            stack.stop()
