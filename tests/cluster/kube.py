"""kubectl and helm against $KUBECONFIG, for the cluster tests.

Nothing here knows which cluster it is: the local one (`make cluster`) or a user's kind/k3d. The
images the chart runs must be in the cluster already (deploy/local-cluster/images.sh does it for
the local cluster; `kind load docker-image` for kind).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.chart.helm import helm_bin
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "queue-worker"
VALUES_DIR = ROOT / "deploy" / "values"
APP_VERSION = re.search(
    r'^appVersion: "(.+)"$', (CHART / "Chart.yaml").read_text(), re.MULTILINE
).group(1)  # type: ignore[union-attr]
# Image tags deploy/local-cluster/images.sh imports: the chart's appVersion and a second tag of
# the same image, for upgrades to "a new image tag".
NEXT_TAG = "next"
# The throwaway Postgres image of the local cluster (no registry can serve `postgres` here).
POSTGRES_IMAGE = {
    "postgres.image.repository": os.environ.get("QW_POSTGRES_IMAGE_REPOSITORY", "local/postgres"),
    "postgres.image.tag": os.environ.get("QW_POSTGRES_IMAGE_TAG", "15"),
}

Obj = dict[str, Any]
RELEASE = "qw"


class KubeError(AssertionError):
    pass


def kubectl_bin() -> str:
    found = os.environ.get("KUBECTL_BIN") or shutil.which("kubectl")
    if not found:
        raise KubeError("kubectl not found: put it on PATH or set KUBECTL_BIN")
    return found


def run(
    argv: Sequence[str], *, stdin: str | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise KubeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    return proc


def kubectl(
    *args: str, stdin: str | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run([kubectl_bin(), *args], stdin=stdin, timeout=timeout, check=check)


def get(kind: str, name: str | None = None, *, namespace: str | None = None, **sel: str) -> Obj:
    args = ["get", kind] + ([name] if name else []) + ["-o", "json"]
    if namespace:
        args += ["-n", namespace]
    if sel:
        args += ["-l", ",".join(f"{k}={v}" for k, v in sel.items())]
    result: Obj = json.loads(kubectl(*args).stdout)
    return result


def items(kind: str, *, namespace: str | None = None, **sel: str) -> list[Obj]:
    found: list[Obj] = get(kind, namespace=namespace, **sel)["items"]
    return found


def apply(manifest: str, *, namespace: str | None = None, server_side: bool = False) -> None:
    args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
    if server_side:
        args += ["--server-side", "--force-conflicts"]
    kubectl(*args, stdin=manifest)


def helm(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([helm_bin(), *args], timeout=timeout, check=check)


def helm_release(
    verb: str,
    namespace: str,
    *extra: str,
    values_files: Sequence[str | Path] = (),
    values: Mapping[str, object] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`helm install|upgrade RELEASE <chart> --wait` in `namespace`, values as value_args()."""
    return helm(
        verb, RELEASE, str(CHART), "-n", namespace, "--wait", "--timeout", "5m", *extra,
        *value_args(values_files, values),
    )  # fmt: skip


def value_args(
    values_files: Sequence[str | Path] = (), set_values: Mapping[str, object] | None = None
) -> list[str]:
    """-f for each values file (relative ones from deploy/values/); --set-string for str values,
    --set for integers and booleans, --set-json for floats (helm's --set reads "1.5" as a string),
    lists and maps (the chart's schema checks the types)."""
    args: list[str] = []
    for f in values_files:
        path = Path(f)
        args += ["-f", str(path if path.is_absolute() else VALUES_DIR / path)]
    for key, value in (set_values or {}).items():
        if isinstance(value, (list, dict, float)):
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        elif isinstance(value, bool):
            args += ["--set", f"{key}={str(value).lower()}"]
        else:
            args += ["--set-string" if isinstance(value, str) else "--set", f"{key}={value}"]
    return args


def wait_until(what: str, predicate: Any, timeout: float, interval: float = 1.0) -> Any:
    """Polls predicate() until it returns something truthy (tests.support.wait_for, with the
    slower default interval that API-server polling wants)."""
    return wait_for(predicate, timeout=timeout, interval=interval, what=what)


def ready_replicas(namespace: str, deployment: str) -> int:
    status = get("deployment", deployment, namespace=namespace).get("status", {})
    return int(status.get("readyReplicas") or 0)


def running_pods(namespace: str, **sel: str) -> list[Obj]:
    return [
        p
        for p in items("pods", namespace=namespace, **sel)
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def events(namespace: str, reason: str | None = None) -> list[Obj]:
    evs = items("events", namespace=namespace)
    return [e for e in evs if reason is None or e.get("reason") == reason]


@contextmanager
def api_client(namespace: str, service: str) -> Iterator[Any]:
    """An httpx client on the API Service through `kubectl port-forward` (works on any cluster)."""
    import httpx

    with (
        port_forward(namespace, f"svc/{service}", 80) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        yield http


@contextmanager
def port_forward(namespace: str, target: str, remote_port: int) -> Iterator[str]:
    """`kubectl port-forward` to a Service or pod on a free local port; yields the base URL."""
    proc = subprocess.Popen(
        [kubectl_bin(), "port-forward", "-n", namespace, target, f":{remote_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            err = proc.stderr.read() if proc.stderr else ""
            raise KubeError(f"port-forward to {target} failed: {line}{err}")
        yield f"http://127.0.0.1:{m.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
