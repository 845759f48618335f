"""What the drainer should change, as pure functions of the database and the cluster (unit-tested).

The rule: every application version that is not the latest and has work no live worker is running
(ENQUEUED, e.g. handed back at shutdown, or PENDING on a dead worker) gets a "drain" Deployment: a
copy of the release's worker Deployment running the image that version was recorded with
(services/common/versions_sql.py), with WORKER_ROLE=drain. When the version's backlog reaches zero,
or it becomes the latest again (a rollback: the release's own workers run it), its drain Deployment
is deleted. Only DBOS's version rules route the work: the latest version's workers take everything
new, each drain worker only its own version's rows.
"""

from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from services.common.versions_sql import VersionSnapshot

Obj = dict[str, Any]

COMPONENT = "app.kubernetes.io/component"
DRAIN_COMPONENT = "worker-drain"
# On the drain Deployment and its pods: which version they run (a hash: label values are short).
VERSION_LABEL = "queue-worker.dbos.dev/app-version-hash"
VERSION_ANNOTATION = "queue-worker.dbos.dev/app-version"
IMAGE_ANNOTATION = "queue-worker.dbos.dev/image"
WORKER_CONTAINER = "worker"
# The labels a drain Deployment keeps from the worker Deployment's (the rest are Helm's).
_KEPT_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of")


@dataclass(frozen=True)
class Drain:
    """A drain Deployment that should exist."""

    app_version: str
    name: str
    image: str
    pinned: bool
    replicas: int


@dataclass(frozen=True)
class Existing:
    """A drain Deployment that exists."""

    app_version: str
    name: str
    replicas: int


@dataclass(frozen=True)
class Plan:
    create: list[Drain] = field(default_factory=list)
    scale: list[tuple[str, int]] = field(default_factory=list)
    delete: list[Existing] = field(default_factory=list)
    # Versions with work but no recorded image: only an operator can help (orphan alert).
    no_image: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.scale or self.delete)


def version_hash(app_version: str) -> str:
    return hashlib.sha256(app_version.encode()).hexdigest()[:10]


def drain_name(worker_deployment: str, app_version: str) -> str:
    """<worker deployment>-drain-<hash>, within the 63 characters of a label-safe name."""
    suffix = f"-drain-{version_hash(app_version)}"
    return worker_deployment[: 63 - len(suffix)].rstrip("-") + suffix


def plan(
    snapshot: VersionSnapshot,
    existing: list[Existing],
    *,
    worker_deployment: str,
    concurrency: int,
    max_replicas: int,
) -> Plan:
    out = Plan()
    if snapshot.latest is None:  # no worker has run yet: nothing is old
        return out
    wanted = sorted(v for v in snapshot.versions_with_backlog() if v != snapshot.latest)
    by_version = {e.app_version: e for e in existing}
    for version in wanted:
        # One pod per `concurrency` workflows, at least one: a drain is short-lived and its
        # backlog is at most what the old pods had in flight, plus their child workflows.
        replicas = min(max_replicas, max(1, math.ceil(snapshot.backlog_of(version) / concurrency)))
        have = by_version.get(version)
        if have is not None:
            # Only up: removing a drain pod would hand its running work back for nothing.
            if replicas > have.replicas:
                out.scale.append((have.name, replicas))
            continue
        if snapshot.unserved_of(version) == 0:
            # All of it runs on live workers of that version (old pods finishing within their
            # grace period during a rollout): a drain starts only if they hand work back or die.
            continue
        recorded = snapshot.images.get(version)
        if recorded is None or recorded.image is None:
            out.no_image.append(version)
            continue
        out.create.append(
            Drain(
                app_version=version,
                name=drain_name(worker_deployment, version),
                image=recorded.image,
                pinned=recorded.pinned,
                replicas=replicas,
            )
        )
    out.delete.extend(e for e in existing if e.app_version not in wanted)
    return out


def existing_drains(deployments: list[Obj]) -> list[Existing]:
    out = []
    for d in deployments:
        version = d["metadata"].get("annotations", {}).get(VERSION_ANNOTATION)
        if version:
            out.append(Existing(version, d["metadata"]["name"], int(d["spec"].get("replicas", 1))))
    return out


def drain_selector(worker: Obj) -> dict[str, str]:
    """Labels that select every drain Deployment of this release."""
    labels = worker["metadata"].get("labels", {})
    return {
        "app.kubernetes.io/instance": labels.get("app.kubernetes.io/instance", ""),
        COMPONENT: DRAIN_COMPONENT,
    }


def worker_concurrency(worker: Obj) -> int:
    """WORKER_CONCURRENCY of the worker container (the drain pods inherit it)."""
    for container in worker["spec"]["template"]["spec"]["containers"]:
        if container["name"] == WORKER_CONTAINER:
            for env in container.get("env", []):
                if env.get("name") == "WORKER_CONCURRENCY" and "value" in env:
                    return max(1, int(env["value"]))
    return 10


def drain_deployment(worker: Obj, drain: Drain) -> Obj:
    """The release's worker Deployment, re-aimed at one old version.

    Its pods keep everything the release configured (database Secret, security context, probes,
    resources) but run the recorded image, with WORKER_ROLE=drain and, if that version was a pin,
    DBOS__APPVERSION set to it; otherwise the old image hashes its own workflow source to the
    same version. Their labels differ from the worker Deployment's selector (component
    worker-drain), so neither Deployment nor the HPA ever counts the other's pods. The worker
    Deployment owns it: deleting the release (helm uninstall) garbage-collects it.
    """
    meta = worker["metadata"]
    identity = {k: v for k, v in meta.get("labels", {}).items() if k in _KEPT_LABELS}
    identity[COMPONENT] = DRAIN_COMPONENT
    identity[VERSION_LABEL] = version_hash(drain.app_version)
    labels = {**identity, "app.kubernetes.io/managed-by": "queue-worker-drainer"}
    template = copy.deepcopy(worker["spec"]["template"])
    template["metadata"]["labels"] = {**template["metadata"].get("labels", {}), **identity}
    for container in template["spec"]["containers"]:
        if container["name"] != WORKER_CONTAINER:
            continue
        container["image"] = drain.image
        env = [
            e
            for e in container.get("env", [])
            if e["name"] not in {"DBOS__APPVERSION", "WORKER_ROLE", "WORKER_IMAGE"}
        ]
        env.append({"name": "WORKER_ROLE", "value": "drain"})
        env.append({"name": "WORKER_IMAGE", "value": drain.image})
        if drain.pinned:
            env.append({"name": "DBOS__APPVERSION", "value": drain.app_version})
        container["env"] = env
    owner: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": drain.name,
            "labels": labels,
            "annotations": {
                VERSION_ANNOTATION: drain.app_version,
                IMAGE_ANNOTATION: drain.image,
            },
            "ownerReferences": [owner] if owner["uid"] else [],
        },
        "spec": {
            "replicas": drain.replicas,
            "selector": {"matchLabels": identity},
            "strategy": copy.deepcopy(worker["spec"].get("strategy", {"type": "RollingUpdate"})),
            "template": template,
        },
    }
