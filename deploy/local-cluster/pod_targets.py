"""Service discovery for the local cluster's Prometheus: Debian's Prometheus is built without the
Kubernetes discovery (`kubernetes_sd_configs` is refused as an unknown field), so this loop asks the
API server for the chart's running pods every 2 seconds and writes them as a file_sd target file,
which Prometheus reloads as soon as it changes. The labels match what the chart's ServiceMonitors
give a Prometheus Operator setup: namespace, pod, release, component.

    python3 pod_targets.py KUBECTL KUBECONFIG OUT.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

PORT_NAMES = {"http", "metrics"}  # the API's and the workers' /metrics ports


def targets(kubectl: str, kubeconfig: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, "get", "pods", "--all-namespaces", "-o", "json",
         "-l", "app.kubernetes.io/name=queue-worker"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    found: list[dict[str, object]] = []
    for pod in json.loads(out)["items"]:
        meta, status = pod["metadata"], pod.get("status", {})
        if status.get("phase") != "Running" or not status.get("podIP"):
            continue
        labels = meta.get("labels", {})
        for container in pod["spec"]["containers"]:
            for port in container.get("ports", []):
                if port.get("name") in PORT_NAMES:
                    found.append({
                        "targets": [f"{status['podIP']}:{port['containerPort']}"],
                        "labels": {
                            "namespace": meta["namespace"],
                            "pod": meta["name"],
                            "release": labels.get("app.kubernetes.io/instance", ""),
                            "component": labels.get("app.kubernetes.io/component", ""),
                        },
                    })  # fmt: skip
    return found


def main() -> None:
    kubectl, kubeconfig, path = sys.argv[1:4]
    last = None
    while True:
        try:
            current = json.dumps(targets(kubectl, kubeconfig), indent=1, sort_keys=True)
        except (subprocess.SubprocessError, ValueError) as exc:
            print(f"pod_targets: {exc}", file=sys.stderr, flush=True)
            current = last
        if current is not None and current != last:
            with open(path + ".tmp", "w") as f:
                f.write(current)
            os.replace(path + ".tmp", path)  # Prometheus never reads a half-written file
            last = current
        time.sleep(2)


if __name__ == "__main__":
    main()
