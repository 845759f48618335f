"""A release that leaves the workflow code alone strands nothing (issue 10, point 1).

The scenario an operator hit: a worker of image 1.0.0 runs three 12-step workflows; the rollout
starts a worker of image 1.0.1 (same workflow code, another log line and other settings) and
SIGTERMs the old one with a 2 s grace. Each "image" is a copy of the services package
(tests.support.fake_image), so the two workers really run two copies of the code.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.support import (
    ServiceProcess,
    Stack,
    edit_text,
    enqueue,
    fake_image,
    wait_status,
    wait_steps,
)

NUM_STEPS = 12
STEP_SECONDS = 1.0  # 12 s per workflow: the new worker starts (seconds on a busy machine) and the
# old one drains for 2 s well before the old worker could finish them


def _only_a_log_line_changed(package: Path) -> None:
    edit_text(package / "worker" / "runner.py", '"worker ready"', '"worker ready (image 1.0.1)"')


def new_workflow_code(package: Path) -> None:
    """Image 2.0.0: a line inside the workflow function changed, so its DBOS version does."""
    edit_text(
        package / "worker" / "workflows" / "demo.py",
        '"workflow finished"',
        '"workflow finished (2.0.0)"',
    )


def reported_version(stack: Stack, index: int) -> str:
    """The app_version label of the worker's queue_worker_worker_info (what DBOS runs)."""
    text = httpx.get(f"http://127.0.0.1:{stack.worker_ports[index]}/metrics").text
    match = re.search(r'queue_worker_worker_info\{app_version="([^"]+)"', text)
    assert match, text[:2000]
    return match.group(1)


def _start_three(stack: Stack, http: httpx.Client) -> list[str]:
    ids = [enqueue(http, NUM_STEPS, step_seconds=STEP_SECONDS) for _ in range(3)]
    for wf in ids:
        wait_steps(http, wf, 1)
    return ids


def _stop_old(old: ServiceProcess) -> None:
    assert old.terminate(timeout=20) == 0
    assert "handed back unfinished workflows" in old.log()


def test_new_image_with_the_same_workflow_code_finishes_in_flight_work(
    database_url: str, tmp_path: Path
) -> None:
    old_image = fake_image(tmp_path, "1.0.0")
    new_image = fake_image(tmp_path, "1.0.1", _only_a_log_line_changed)
    # Sweeps off: only the hand-back and version identity can get the work onto the new worker.
    stack = Stack(database_url, tmp_path, WORKER_RECOVERY_SWEEP_SECONDS="0")
    try:
        stack.start_api()
        old = stack.start_worker("old-pod", image=old_image, WORKER_SHUTDOWN_GRACE_SECONDS="2")
        with stack.client() as http:
            ids = _start_three(stack, http)
            new = stack.start_worker(
                "new-pod",
                image=new_image,
                WORKER_SHUTDOWN_GRACE_SECONDS="30",
                WORKER_CONCURRENCY="5",
                LOG_LEVEL="debug",
            )
            assert "worker ready (image 1.0.1)" in new.log()  # the copy really ran
            versions = (reported_version(stack, 0), reported_version(stack, 1))
            _stop_old(old)
            for wf in ids:
                done = wait_status(http, wf, {"SUCCESS", "ERROR"}, timeout=60)
                assert done["workflow_status"] == "SUCCESS", done
                assert done["steps_completed"] == NUM_STEPS
                assert (done["executor_id"], done["app_version"]) == ("new-pod", versions[1])
            # DBOS's hash of the workflow source (32 hex digits), the same for both images.
            assert versions[0] == versions[1]
            assert re.fullmatch(r"[0-9a-f]{32}", versions[0]), versions
    finally:
        stack.stop()


def test_versions_pinned_to_image_tags_strand_the_work(database_url: str, tmp_path: Path) -> None:
    """Yesterday's chart (DBOS__APPVERSION = image tag): the same rollout strands all three.
    A pin is for incompatible workflow changes only (the chart's worker.workflowVersion); the
    old version's work then needs workers of the old version (docs/kubernetes.md, Upgrade)."""
    old_image = fake_image(tmp_path, "1.0.0")
    new_image = fake_image(tmp_path, "1.0.1", _only_a_log_line_changed)
    stack = Stack(database_url, tmp_path, WORKER_RECOVERY_SWEEP_SECONDS="0")
    try:
        stack.start_api()
        old = stack.start_worker(
            "old-pod", image=old_image, WORKER_SHUTDOWN_GRACE_SECONDS="2", DBOS__APPVERSION="1.0.0"
        )
        with stack.client() as http:
            ids = _start_three(stack, http)
            stack.start_worker("new-pod", image=new_image, DBOS__APPVERSION="1.0.1")
            _stop_old(old)
            # The new worker polls every 0.2 s; give it many polls' worth of chances.
            time.sleep(5)
            for wf in ids:
                body = http.get(f"/api/workflows/{wf}").json()
                assert (body["workflow_status"], body["app_version"]) == ("ENQUEUED", "1.0.0")
                assert body["steps_completed"] < NUM_STEPS
            # New work (enqueued without a version) goes to the latest version's worker.
            fresh = enqueue(http, 2, step_seconds=0.05)
            done = wait_status(http, fresh, {"SUCCESS", "ERROR"}, timeout=30)
            assert (done["workflow_status"], done["app_version"]) == ("SUCCESS", "1.0.1")
    finally:
        stack.stop()


def test_a_rollback_takes_the_new_work_again(database_url: str, tmp_path: Path) -> None:
    """DBOS makes a version the latest only the first time it sees it; after a rollback the API's
    version-less work would wait for the newer version's workers. Release workers promote their
    version when they start (services/worker/version.py, announce)."""
    v1_image = fake_image(tmp_path, "1.0.0")
    v2_image = fake_image(tmp_path, "2.0.0", new_workflow_code)
    stack = Stack(database_url, tmp_path)
    try:
        stack.start_api()
        stack.start_worker("one", image=v1_image)
        v1 = reported_version(stack, 0)
        assert stack.workers[0].terminate() == 0
        stack.start_worker("two", image=v2_image)
        v2 = reported_version(stack, 1)
        assert v1 != v2
        assert "made this application version the latest" not in stack.workers[1].log()
        assert stack.workers[1].terminate() == 0
        back = stack.start_worker("one-again", image=v1_image)  # helm rollback
        assert reported_version(stack, 2) == v1
        with stack.client() as http:
            wf = enqueue(http, 2, step_seconds=0.05)
            done = wait_status(http, wf, {"SUCCESS", "ERROR"}, timeout=30)
            assert (done["workflow_status"], done["app_version"]) == ("SUCCESS", v1)
            assert done["executor_id"] == "one-again"
        assert "made this application version the latest" in back.log()
    finally:
        stack.stop()
