"""The few Kubernetes API calls we make, over plain HTTPS with the pod's ServiceAccount.

The drainer: Deployments in one namespace only (get, list by label, create, scale, delete). A
worker: a merge patch of its own pod's annotations (the pod-deletion cost). The chart's Roles
grant exactly these verbs. No client library: six requests do not justify a dependency (and its
lock-file churn) in the worker image.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from services.common.settings import Settings, SettingsError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")

Obj = dict[str, Any]


def _status_message(body: bytes) -> str:
    """The API server's own sentence (a Status object's `message`: e.g. which admission policy
    refused and why), else the start of the body."""
    text = body.decode(errors="replace")
    try:
        message = json.loads(text).get("message")
    except (ValueError, AttributeError):
        message = None
    return message[:1000] if isinstance(message, str) and message else text[:300]


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API answered {status}: {message}")
        self.status = status


class Kube:
    def __init__(
        self,
        base_url: str,
        namespace: str,
        *,
        token_file: Path | None = None,
        ca_file: Path | None = None,
        timeout_sec: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        self._token_file = token_file
        self._timeout = timeout_sec
        self._ssl = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Kube:
        """KUBERNETES_API_URL and POD_NAMESPACE, else the in-cluster service and ServiceAccount."""
        url = settings.kubernetes_api_url
        if url is None:
            host = os.environ.get("KUBERNETES_SERVICE_HOST")
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                raise SettingsError(
                    "the Kubernetes API is needed: run in a pod, or set KUBERNETES_API_URL"
                )
            url = f"https://{host}:{port}"
        namespace = settings.pod_namespace
        if namespace is None:
            ns_file = SERVICE_ACCOUNT / "namespace"
            if not ns_file.is_file():
                raise SettingsError("the Kubernetes namespace is needed: set POD_NAMESPACE")
            namespace = ns_file.read_text().strip()
        token = SERVICE_ACCOUNT / "token"
        ca = SERVICE_ACCOUNT / "ca.crt"
        return cls(
            url,
            namespace,
            token_file=token if token.is_file() else None,
            ca_file=ca if url.startswith("https://") and ca.is_file() else None,
        )

    def _deployments(self, name: str | None = None) -> str:
        path = f"/apis/apps/v1/namespaces/{self.namespace}/deployments"
        return f"{path}/{name}" if name else path

    def _request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        headers = {"Accept": "application/json"}
        if self._token_file is not None:
            # Re-read every time: the kubelet rotates projected ServiceAccount tokens.
            headers["Authorization"] = f"Bearer {self._token_file.read_text().strip()}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        request = urllib.request.Request(  # noqa: S310 (our configured API server URL)
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self._timeout, context=self._ssl
            ) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise KubeError(exc.code, _status_message(exc.read())) from None
        result: Obj = json.loads(raw) if raw else {}
        return result

    def get_deployment(self, name: str) -> Obj | None:
        try:
            return self._request("GET", self._deployments(name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list_deployments(self, labels: dict[str, str]) -> list[Obj]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        query = urllib.parse.urlencode({"labelSelector": selector})
        items: list[Obj] = self._request("GET", f"{self._deployments()}?{query}").get("items", [])
        return items

    def create_deployment(self, obj: Obj) -> Obj:
        return self._request("POST", self._deployments(), obj)

    def scale_deployment(self, name: str, replicas: int) -> Obj:
        return self._request(
            "PATCH",
            self._deployments(name),
            {"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    def delete_deployment(self, name: str) -> None:
        try:
            self._request(
                "DELETE",
                self._deployments(name) + "?propagationPolicy=Background",
            )
        except KubeError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise

    def annotate_pod(self, name: str, annotations: dict[str, str]) -> Obj:
        """Merge these annotations into a pod's (a worker patches only its own: the chart's
        ValidatingAdmissionPolicy refuses any other pod and any other change)."""
        return self._request(
            "PATCH",
            f"/api/v1/namespaces/{self.namespace}/pods/{name}",
            {"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )
