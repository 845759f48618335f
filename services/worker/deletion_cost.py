"""Keep this pod's deletion cost equal to the workflows it runs, so a scale-down spares busy pods.

When a ReplicaSet scales down it deletes the pods with the lowest
`controller.kubernetes.io/pod-deletion-cost` first. Left alone, every worker has the same cost and
Kubernetes may pick a busy worker while idle ones stay: the busy one then drains for its grace
period and hands back what did not finish, which reruns elsewhere. With the annotation tracking
the number of in-flight workflows, idle workers (cost 0) go first.

Rate-limited: one PATCH per interval at most, and only when the count changed since the last
successful one. Failures are logged (once per kind of failure) and retried at the next tick; they
never stop the worker. The chart's RBAC lets a worker patch pods, and its ValidatingAdmissionPolicy
lets it change only this one annotation on its own pod (the pod name in its ServiceAccount token).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from services.common.kube import Kube, KubeError

log = logging.getLogger(__name__)

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


class DeletionCost:
    def __init__(
        self,
        kube: Kube,
        pod_name: str,
        in_flight: Callable[[], int],
        interval_sec: float,
    ) -> None:
        self._kube = kube
        self._pod = pod_name
        self._in_flight = in_flight
        self._interval = interval_sec
        self._published: int | None = None
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-deletion-cost", daemon=True)
        self.patches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def tick(self) -> None:
        """Publish the in-flight count if it changed (one PATCH at most)."""
        cost = self._in_flight()
        if cost == self._published:
            return
        try:
            self._kube.annotate_pod(self._pod, {ANNOTATION: str(cost)})
        except (KubeError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            if error != self._last_error:
                log.warning("pod-deletion-cost update failed", extra={"error": error})
                self._last_error = error
            return
        if self._last_error is not None:
            log.info("pod-deletion-cost updates work again")
            self._last_error = None
        self._published = cost
        self.patches += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self._interval)
