"""A stand-in for the parts of Kubernetes the drainer relies on, for tests with real processes.

FakeKube serves the five Deployment calls the drainer makes (services/common/kube.py) from memory,
on a loopback port. Kubelet plays the ReplicaSet controller and the kubelet: on each sync() it
makes the worker processes match the Deployments (replicas, image, env), starting each pod as a
real `queue-worker worker` from the copy of the code its image names (tests.support.fake_image),
replacing pods whose image changed new-before-old (maxUnavailable 0), and SIGTERMing the pods of a
deleted Deployment. It is not Kubernetes: no scheduling, probes or restarts; just enough to run the
drainer's decisions for real.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import ServiceProcess, free_port, wait_for

Obj = dict[str, Any]
PREFIX = "/apis/apps/v1/namespaces/{namespace}/deployments"


class FakeKube:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.deployments: dict[str, Obj] = {}
        self.calls: list[tuple[str, str]] = []  # (verb, name) of every write, in order
        self._lock = threading.Lock()
        self.port = free_port()
        app = Starlette(
            routes=[
                Route(PREFIX, self._collection, methods=["GET", "POST"]),
                Route(PREFIX + "/{name}", self._item, methods=["GET", "PATCH", "DELETE"]),
            ]
        )
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeKube:
        self._thread.start()
        wait_for(lambda: self._server.started, timeout=10, what="the fake Kubernetes API")
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def put(self, obj: Obj) -> None:
        """Create or replace a Deployment (what `helm upgrade` does to the worker Deployment)."""
        with self._lock:
            obj = copy.deepcopy(obj)
            old = self.deployments.get(obj["metadata"]["name"])
            obj["metadata"]["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
            self.deployments[obj["metadata"]["name"]] = obj

    def snapshot(self) -> dict[str, Obj]:
        with self._lock:
            return copy.deepcopy(self.deployments)

    def _check_ns(self, request: Request) -> Response | None:
        if request.path_params["namespace"] != self.namespace:
            return JSONResponse({"message": "forbidden namespace"}, status_code=403)
        return None

    async def _collection(self, request: Request) -> Response:
        if (denied := self._check_ns(request)) is not None:
            return denied
        if request.method == "POST":
            obj: Obj = await request.json()
            name = obj["metadata"]["name"]
            with self._lock:
                if name in self.deployments:
                    return JSONResponse({"message": "already exists"}, status_code=409)
                obj["metadata"]["uid"] = str(uuid.uuid4())
                self.deployments[name] = obj
                self.calls.append(("create", name))
            return JSONResponse(obj, status_code=201)
        wanted = dict(
            part.split("=", 1)
            for part in request.query_params.get("labelSelector", "").split(",")
            if part
        )
        with self._lock:
            items = [
                d
                for d in self.deployments.values()
                if wanted.items() <= d["metadata"].get("labels", {}).items()
            ]
            return JSONResponse({"kind": "DeploymentList", "items": items})

    async def _item(self, request: Request) -> Response:
        if (denied := self._check_ns(request)) is not None:
            return denied
        name = request.path_params["name"]
        with self._lock:
            obj = self.deployments.get(name)
            if obj is None:
                return JSONResponse({"message": "not found"}, status_code=404)
            if request.method == "GET":
                return JSONResponse(obj)
            if request.method == "DELETE":
                del self.deployments[name]
                self.calls.append(("delete", name))
                return JSONResponse({"status": "Success"})
        patch: Obj = await request.json()
        assert request.headers["content-type"] == "application/merge-patch+json"
        with self._lock:
            obj["spec"]["replicas"] = patch["spec"]["replicas"]
            self.calls.append(("scale", name))
            return JSONResponse(obj)


@dataclass
class Pod:
    name: str
    image: str
    process: ServiceProcess
    port: int


@dataclass
class Kubelet:
    """Runs the pods of FakeKube's Deployments as real worker processes."""

    kube: FakeKube
    images: Mapping[str, Path]  # image reference -> directory made by tests.support.fake_image
    secrets: Mapping[str, str]  # what each secretKeyRef env var resolves to
    workdir: Path
    # Applied over each pod's env: the tests' fast timings (the chart's defaults are for clusters).
    env_overrides: Mapping[str, str] = field(default_factory=dict)
    pods: dict[str, list[Pod]] = field(default_factory=dict)
    ended: list[Pod] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _env(self, container: Obj, pod_name: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for entry in container.get("env", []):
            source = entry.get("valueFrom", {})
            if "value" in entry:
                env[entry["name"]] = str(entry["value"])
            elif "secretKeyRef" in source:
                env[entry["name"]] = self.secrets[entry["name"]]
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[entry["name"]] = pod_name
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[entry["name"]] = self.kube.namespace
        return {**env, **self.env_overrides}

    def _start(self, deployment: Obj) -> Pod:
        (container,) = [
            c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"
        ]
        name = f"{deployment['metadata']['name']}-{next(self._ids)}"
        port = free_port()
        process = ServiceProcess(
            ["worker", "--metrics-host", "127.0.0.1", "--metrics-port", str(port)],
            self._env(container, name),
            self.workdir / f"{name}.log",
            cwd=self.images[container["image"]],
        )
        process.wait_http_ok(f"http://127.0.0.1:{port}/readyz")
        wait_for(lambda: "worker ready" in process.log(), timeout=60, what=f"{name} to launch")
        return Pod(name, container["image"], process, port)

    def _stop(self, pod: Pod) -> None:
        pod.process.terminate(timeout=60)
        self.ended.append(pod)

    def sync(self) -> None:
        """One pass of the controllers: make the pods match the Deployments."""
        deployments = self.kube.snapshot()
        for name in [n for n in self.pods if n not in deployments]:
            for pod in self.pods.pop(name):
                self._stop(pod)
        for name, deployment in deployments.items():
            pods = self.pods.setdefault(name, [])
            want = int(deployment["spec"].get("replicas", 1))
            (container,) = [
                c
                for c in deployment["spec"]["template"]["spec"]["containers"]
                if c["name"] == "worker"
            ]
            # Rolling update: a new pod is ready before an old one stops.
            for old in [p for p in pods if p.image != container["image"]]:
                pods.append(self._start(deployment))
                pods.remove(old)
                self._stop(old)
            while len(pods) < want:
                pods.append(self._start(deployment))
            while len(pods) > want:
                self._stop(pods.pop())

    def all_pods(self) -> list[Pod]:
        return [p for pods in self.pods.values() for p in pods]

    def stop_all(self) -> None:
        for pods in self.pods.values():
            for pod in pods:
                pod.process.kill()
        self.pods.clear()


def poll(kubelet: Kubelet, seconds: float) -> None:
    """Let the controllers run for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kubelet.sync()
        time.sleep(0.2)
