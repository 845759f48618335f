"""The drainer's decisions (services/drain/plan.py): which old versions get workers, how many, and
what their Deployment looks like."""

from __future__ import annotations

from typing import Any

from services.common.versions_sql import Backlog, VersionImage, VersionSnapshot
from services.drain.plan import (
    DRAIN_COMPONENT,
    VERSION_ANNOTATION,
    Drain,
    Existing,
    drain_deployment,
    drain_name,
    drain_selector,
    existing_drains,
    plan,
    worker_concurrency,
)

WORKER = "qw-queue-worker-worker"


def snapshot(latest: str | None, *backlog: Backlog, **images: VersionImage) -> VersionSnapshot:
    return VersionSnapshot(latest=latest, backlog=list(backlog), images=dict(images))


def image(name: str | None = "repo/worker:1.0.0", pinned: bool = False) -> VersionImage:
    return VersionImage(name, pinned)


def run(s: VersionSnapshot, existing: list[Existing] | None = None, max_replicas: int = 4) -> Any:
    return plan(
        s, existing or [], worker_deployment=WORKER, concurrency=10, max_replicas=max_replicas
    )


def test_an_old_version_with_work_gets_workers_of_its_image() -> None:
    s = snapshot(
        "new",
        Backlog("workflow-queue", "old", enqueued=3, pending=0),
        Backlog("workflow-queue", None, enqueued=50, pending=0),  # version-less: the latest's
        Backlog("workflow-queue", "new", enqueued=0, pending=7),
        old=image(),
    )
    p = run(s)
    assert p.create == [Drain("old", drain_name(WORKER, "old"), "repo/worker:1.0.0", False, 1)]
    assert (p.scale, p.delete, p.no_image) == ([], [], [])
    assert s.backlog_of("new") == 57


def test_no_drain_while_live_old_workers_run_all_of_it() -> None:
    """A rollout: the old pods still finish their work within the grace period."""
    running = VersionSnapshot(
        latest="new",
        backlog=[Backlog("q", "old", enqueued=0, pending=5)],
        images={"old": image()},
        served={"old": 5},
    )
    assert run(running).empty
    # One of them died (its PENDING row is no longer served), or they handed work back.
    died = VersionSnapshot(
        latest="new",
        backlog=[Backlog("q", "old", enqueued=0, pending=5)],
        images={"old": image()},
        served={"old": 4},
    )
    assert [d.replicas for d in run(died).create] == [1]
    # An existing drain is kept while its own pods run the rest (served by them).
    have = Existing("old", drain_name(WORKER, "old"), 1)
    assert run(running, [have]).empty


def test_replicas_follow_the_backlog_up_to_the_cap_and_never_shrink() -> None:
    s = snapshot("new", Backlog("q", "old", enqueued=25, pending=10), old=image())
    assert run(s).create[0].replicas == 4  # ceil(35 / 10)
    assert run(s, max_replicas=2).create[0].replicas == 2
    have = Existing("old", drain_name(WORKER, "old"), 2)
    assert run(s, [have]).scale == [(have.name, 4)]
    # Backlog fell: keep the pods (shrinking would hand running work back for nothing).
    small = snapshot("new", Backlog("q", "old", enqueued=1, pending=0), old=image())
    assert run(small, [Existing("old", have.name, 4)]).empty


def test_drained_or_latest_again_versions_lose_their_workers() -> None:
    done = Existing("old", drain_name(WORKER, "old"), 1)
    assert run(snapshot("new", old=image()), [done]).delete == [done]
    # A rollback made "old" the latest again: the release's own workers run it now.
    back = snapshot("old", Backlog("q", "old", enqueued=5, pending=0), old=image())
    assert run(back, [done]).delete == [done]


def test_nothing_before_any_worker_ran_and_no_guessing_an_image() -> None:
    assert run(snapshot(None, Backlog("q", None, enqueued=5, pending=0))).empty
    s = snapshot("new", Backlog("q", "lost", enqueued=2, pending=0), lost=image(None))
    p = run(s)
    assert p.empty
    assert p.no_image == ["lost"]
    assert run(snapshot("new", Backlog("q", "unknown", enqueued=2, pending=0))).no_image == [
        "unknown"
    ]


def test_names_stay_valid_for_long_release_names() -> None:
    long = "a" * 62
    name = drain_name(long, "some-version")
    assert len(name) <= 63
    assert name.startswith("a")
    assert "-drain-" in name
    assert drain_name(long, "v1") != drain_name(long, "v2")


def _worker() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": WORKER,
            "uid": "1234",
            "labels": {
                "app.kubernetes.io/name": "queue-worker",
                "app.kubernetes.io/instance": "qw",
                "app.kubernetes.io/component": "worker",
                "app.kubernetes.io/managed-by": "Helm",
                "helm.sh/chart": "queue-worker-0.1.0",
            },
        },
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "queue-worker",
                    "app.kubernetes.io/instance": "qw",
                    "app.kubernetes.io/component": "worker",
                }
            },
            "template": {
                "metadata": {
                    "labels": {
                        "app.kubernetes.io/name": "queue-worker",
                        "app.kubernetes.io/instance": "qw",
                        "app.kubernetes.io/component": "worker",
                        "team": "payments",
                    }
                },
                "spec": {
                    "containers": [
                        {
                            "name": "worker",
                            "image": "repo/worker:2.0.0",
                            "env": [
                                {"name": "WORKER_CONCURRENCY", "value": "7"},
                                {"name": "DBOS__APPVERSION", "value": "v2"},
                                {"name": "WORKER_ROLE", "value": "main"},
                                {"name": "WORKER_IMAGE", "value": "repo/worker:2.0.0"},
                            ],
                        }
                    ]
                },
            },
        },
    }


def _env(obj: dict[str, Any]) -> dict[str, str]:
    (c,) = obj["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in c["env"]}


def test_the_drain_deployment_is_the_worker_deployment_aimed_at_the_old_version() -> None:
    worker = _worker()
    assert worker_concurrency(worker) == 7
    drain = Drain("v1", drain_name(WORKER, "v1"), "repo/worker:1.0.0", pinned=True, replicas=2)
    obj = drain_deployment(worker, drain)
    assert obj["metadata"]["name"] == drain.name
    assert obj["metadata"]["annotations"][VERSION_ANNOTATION] == "v1"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "1234"
    assert obj["spec"]["replicas"] == 2
    selector = obj["spec"]["selector"]["matchLabels"]
    pod_labels = obj["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert pod_labels["team"] == "payments"
    # Never selected by the worker Deployment (nor its HPA, PDB or Service), and vice versa.
    worker_selector = worker["spec"]["selector"]["matchLabels"]
    assert not worker_selector.items() <= pod_labels.items()
    assert not selector.items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    assert selector.items() >= drain_selector(worker).items()
    assert pod_labels["app.kubernetes.io/component"] == DRAIN_COMPONENT
    (c,) = obj["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "repo/worker:1.0.0"
    assert _env(obj) == {
        "WORKER_CONCURRENCY": "7",
        "WORKER_ROLE": "drain",
        "WORKER_IMAGE": "repo/worker:1.0.0",
        "DBOS__APPVERSION": "v1",  # it was a pin: the old pods must run under it again
    }
    # A hashed version: the old image computes it itself; no pin is added.
    hashed = drain_deployment(worker, Drain("abc", "n", "repo/worker:1.0.0", False, 1))
    assert "DBOS__APPVERSION" not in _env(hashed)
    # The worker Deployment itself is untouched.
    assert _env(worker)["WORKER_ROLE"] == "main"
    assert existing_drains([obj]) == [Existing("v1", drain.name, 2)]
