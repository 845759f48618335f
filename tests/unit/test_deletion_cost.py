"""The deletion-cost tracker: one PATCH per change, none while unchanged, failures retried."""

from __future__ import annotations

from typing import Any

from services.common.kube import Kube, KubeError
from services.worker.deletion_cost import ANNOTATION, DeletionCost


class RecordingKube(Kube):
    """The real request builder up to the network: requests are recorded, or fail on demand."""

    def __init__(self) -> None:
        super().__init__("https://kube.invalid", "queue")
        self.requests: list[tuple[str, str, Any, str]] = []
        self.fail_with: int | None = None

    def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        if self.fail_with is not None:
            raise KubeError(self.fail_with, "denied")
        self.requests.append((method, path, body, content_type))
        return {}


def test_publishes_only_changes_as_a_merge_patch_of_its_own_pod() -> None:
    kube = RecordingKube()
    load = iter([0, 0, 3, 3, 1, 0])
    tracker = DeletionCost(kube, "worker-abc", lambda: next(load), interval_sec=1)
    for _ in range(6):
        tracker.tick()
    assert [r[2]["metadata"]["annotations"][ANNOTATION] for r in kube.requests] == [
        "0",
        "3",
        "1",
        "0",
    ]
    method, path, _, content_type = kube.requests[0]
    assert (method, path) == ("PATCH", "/api/v1/namespaces/queue/pods/worker-abc")
    assert content_type == "application/merge-patch+json"
    assert tracker.patches == 4


def test_a_failed_patch_is_retried_at_the_next_tick_and_never_raises() -> None:
    kube = RecordingKube()
    tracker = DeletionCost(kube, "worker-abc", lambda: 2, interval_sec=1)
    kube.fail_with = 403
    tracker.tick()
    tracker.tick()
    assert kube.requests == []
    assert tracker.patches == 0
    kube.fail_with = None
    tracker.tick()
    tracker.tick()
    assert len(kube.requests) == 1
    assert tracker.patches == 1


def test_the_thread_stops_promptly() -> None:
    kube = RecordingKube()
    tracker = DeletionCost(kube, "worker-abc", lambda: 1, interval_sec=0.05)
    tracker.start()
    tracker.stop()
    assert len(kube.requests) == 1


def test_an_api_refusal_reads_as_the_servers_sentence() -> None:
    from services.common.kube import _status_message

    body = b'{"kind":"Status","status":"Failure","message":"pods \\"x\\" is forbidden: ' + (
        b"ValidatingAdmissionPolicy 'p' denied request: a worker may change only its own pod"
        b'","reason":"Invalid","code":422}'
    )
    assert _status_message(body).endswith("a worker may change only its own pod")
    assert _status_message(b"<html>bad gateway</html>") == "<html>bad gateway</html>"
