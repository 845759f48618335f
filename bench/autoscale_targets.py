"""Depth target vs wait-time target on the same bursty arrivals, on a real cluster:
`KUBECONFIG=.cluster/kubeconfig python -m bench.autoscale_targets` (after `make cluster`; any
cluster with the images loaded and prometheus-adapter serving the External metrics works).

Each target gets a fresh namespace and release (concurrency 2, 1..6 workers, 30 s scale-down
stabilization) and the same arrivals: three bursts of 16 workflows (4 steps of 1 s) 40 s apart,
plus one workflow every 4 s for the first 120 s. Printed: p95 and max queue wait (started_at -
created_at, from the API), worker-seconds (ready worker pods integrated over time, from the first
enqueue to the last completion), peak workers, and the wait target's ratios to the depth target's.
Results also go to bench/results/autoscale-targets.md. About 10 minutes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import percentile, progress
from tests.cluster import kube
from tests.cluster.test_release_lifecycle import SMALL

WORKER = f"{kube.RELEASE}-queue-worker-worker"
API = f"{kube.RELEASE}-queue-worker-api"
TARGET_WAIT = 10.0
BURSTS = (0.0, 40.0, 80.0)
BURST_SIZE = 16
TRICKLE_EVERY = 4.0
TRICKLE_UNTIL = 120.0
RESULTS = Path(__file__).resolve().parent / "results" / "autoscale-targets.md"


def _namespace(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn", "audit")}
    kube.apply(json.dumps({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": name, "labels": labels}}))  # fmt: skip
    return name


def _schedule() -> list[float]:
    times = [b for b in BURSTS for _ in range(BURST_SIZE)]
    t = 0.0
    while t < TRICKLE_UNTIL:
        times.append(t)
        t += TRICKLE_EVERY
    return sorted(times)


class ReplicaSampler:
    """Ready worker pods every 2 s; integrates worker-seconds between start() and stop()."""

    def __init__(self, ns: str) -> None:
        self._ns = ns
        self._stop = threading.Event()
        self.samples: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), kube.ready_replicas(self._ns, WORKER)))
            self._stop.wait(2)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> tuple[float, int]:
        self._stop.set()
        self._thread.join()
        seconds = sum(
            n * (t2 - t1) for (t1, n), (t2, _) in zip(self.samples, self.samples[1:], strict=False)
        )
        return seconds, max(n for _, n in self.samples)


def run_target(label: str, target_wait: float) -> dict[str, Any]:
    ns = _namespace(f"bench-{label}")
    try:
        kube.helm_release(
            "install", ns,
            values={
                **SMALL, **kube.POSTGRES_IMAGE,
                "worker.concurrency": 2,
                "worker.autoscaling.minReplicas": 1,
                "worker.autoscaling.maxReplicas": 6,
                "worker.autoscaling.targetWaitSeconds": target_wait,
                "worker.autoscaling.scaleDown.stabilizationWindowSeconds": 30,
            },
        )  # fmt: skip
        sampler = ReplicaSampler(ns)
        with kube.api_client(ns, API) as http:
            ids: list[str] = []
            sampler.start()
            t0 = time.monotonic()
            for at in _schedule():
                time.sleep(max(0.0, t0 + at - time.monotonic()))
                r = http.post("/api/workflows", json={"num_steps": 4, "step_seconds": 1})
                r.raise_for_status()
                ids.append(r.json()["workflow_id"])
            progress(f"{label}: {len(ids)} enqueued; waiting for them to finish")

            def rows() -> list[dict[str, Any]] | None:
                got = [http.get(f"/api/workflows/{i}").json() for i in ids]
                done = all(g["workflow_status"] == "SUCCESS" for g in got)
                return got if done else None

            finished = kube.wait_until(f"{label}: all SUCCESS", rows, 900, 3)
        worker_seconds, peak = sampler.stop()
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)

    def ts(value: str) -> float:
        return datetime.fromisoformat(value).timestamp()

    waits = [ts(r["started_at"]) - ts(r["created_at"]) for r in finished]
    out = {
        "target": label,
        "workflows": len(finished),
        "p95_wait_s": percentile(waits, 95),
        "max_wait_s": max(waits),
        "worker_seconds": worker_seconds,
        "peak_workers": peak,
    }
    progress(f"{label}: {json.dumps(out)}")
    return out


def main() -> int:
    if not os.environ.get("KUBECONFIG"):
        print("bench.autoscale_targets: set KUBECONFIG (make cluster; export "
              "KUBECONFIG=$PWD/.cluster/kubeconfig)", file=sys.stderr)  # fmt: skip
        return 2
    depth = run_target("depth", 0)
    wait = run_target("wait", TARGET_WAIT)
    lines = [
        "# Autoscaling targets on the local cluster",
        "",
        f"`python -m bench.autoscale_targets` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"bursts of {BURST_SIZE} at {BURSTS} s plus one every {TRICKLE_EVERY:g} s until "
        f"{TRICKLE_UNTIL:g} s; workflows of 4 x 1 s; concurrency 2, 1..6 workers; wait target "
        f"{TARGET_WAIT:g} s. Ratio is wait target / depth target.",
        "",
        "| Measurement | Wait target | Depth target | Ratio |",
        "|---|---|---|---|",
    ]
    for key, name in (
        ("p95_wait_s", "p95 queue wait (s)"),
        ("max_wait_s", "max queue wait (s)"),
        ("worker_seconds", "worker-seconds"),
        ("peak_workers", "peak workers"),
    ):
        lines.append(
            f"| {name} | {wait[key]:.1f} | {depth[key]:.1f} | {wait[key] / depth[key]:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
