"""The live stream through the chart's Ingress (issue 13, point 3): Traefik, the local cluster's
ingress controller, must pass Server-Sent Events through as they are written, not buffer them
until the stream ends. One workflow of 4 steps of 2 s is followed on
GET /api/workflows/{id}/events through the Ingress; its progress events must arrive spread over
the run (each about when its step finished), and the stream must end after SUCCESS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from tests.cluster import kube
from tests.cluster.test_release_lifecycle import SMALL
from tests.cluster.test_values_scenarios import INGRESS_CLASS, INGRESS_HOST, INGRESS_URL


def test_progress_events_cross_the_ingress_as_they_happen(
    restricted_namespace: Callable[[str], str], crds: list[str]
) -> None:
    ns = restricted_namespace("sse")
    kube.helm_release(
        "install", ns,
        values={
            **SMALL, **kube.POSTGRES_IMAGE,
            "worker.autoscaling.enabled": False,
            "worker.replicas": 1,
            "api.ingress.enabled": True,
            "api.ingress.className": INGRESS_CLASS,
            "api.ingress.hosts[0]": INGRESS_HOST,
            "api.ingress.tls": [],
        },
    )  # fmt: skip
    headers = {"Host": INGRESS_HOST}
    with httpx.Client(base_url=INGRESS_URL, headers=headers, timeout=30) as http:
        kube.wait_until(
            "the Ingress route",
            lambda: http.get("/api/workflows").status_code == 200,
            120,
        )
        r = http.post("/api/workflows", json={"num_steps": 4, "step_seconds": 2})
        assert r.status_code == 202, r.text
        wid = r.json()["workflow_id"]
        arrivals: list[tuple[float, int, str]] = []
        t0 = time.monotonic()
        with http.stream("GET", f"/api/workflows/{wid}/events") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    arrivals.append(
                        (time.monotonic() - t0, event["steps_completed"], event["workflow_status"])
                    )
    print(f"\nevents through Traefik (s after opening, steps, status): {arrivals}")
    assert arrivals[-1][1:] == (4, "SUCCESS")
    progress = {steps: at for at, steps, _ in arrivals}
    # Unbuffered: the event for step 1 arrived well before the one for step 4 (6 s of steps
    # apart), not together at the end.
    assert min(progress) <= 1
    assert progress[4] - progress[min(progress)] >= 4
