"""A misspelt, wrongly typed or contradictory value fails at `helm template`/`install` with a
message that names the value, before anything reaches a cluster.

values.schema.json (additionalProperties: false everywhere) catches shapes and types; the chart's
"queue-worker.validate" template catches combinations a schema cannot explain clearly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, helm, template_args

pytestmark = pytest.mark.chart

REJECTED = [
    # (what the user wrote, what the error must say)
    ({"worker.concurency": "3"}, ["/worker", "'concurency' not allowed"]),
    ({"api.ingres.enabled": "true"}, ["/api", "'ingres' not allowed"]),
    ({"metrics.serviceMonitor.enable": "true"}, ["/metrics/serviceMonitor", "'enable'"]),
    ({"worker.concurrency": "many"}, ["/worker/concurrency", "got string, want integer"]),
    ({"worker.concurrency": "0"}, ["/worker/concurrency", "minimum"]),
    ({"worker.autoscaling.enabled": "yes"}, ["/worker/autoscaling/enabled", "want boolean"]),
    ({"api.port": "70000"}, ["/api/port", "maximum"]),
    ({"logging.format": "xml"}, ["/logging/format", "'json', 'text'"]),
    ({"api.service.type": "Ingress"}, ["/api/service/type", "ClusterIP"]),
    ({"worker.image.tag": "not a tag"}, ["/worker/image/tag", "does not match pattern"]),
    ({"worker.workflowVersion": "v 2"}, ["/worker/workflowVersion", "does not match pattern"]),
    ({"api.image.pullPolicy": "always"}, ["/api/image/pullPolicy", "IfNotPresent"]),
    ({"database.url": "mysql://db/queue"}, ["/database/url", "does not match pattern"]),
    ({"worker.shutdownGraceSeconds": "1.5"}, ["/worker/shutdownGraceSeconds", "want integer"]),
    ({"api.resources.limit.cpu": "1"}, ["/api/resources", "'limit' not allowed"]),
    # Cross-field rules, with the chart's own words.
    (
        {"worker.keda.enabled": "true"},
        ["worker.autoscaling.enabled and worker.keda.enabled are mutually exclusive"],
    ),
    ({"postgres.enabled": "false"}, ["no database: set database.existingSecret"]),
    (
        {"database.existingSecret": "my-db"},
        ["postgres.enabled=true starts a throwaway database", "keep only one"],
    ),
    (
        {"worker.deadAfterSeconds": "6"},
        ["worker.deadAfterSeconds (6) must be at least twice worker.heartbeatSeconds (5)"],
    ),
    (
        {"worker.autoscaling.minReplicas": "5", "worker.autoscaling.maxReplicas": "3"},
        ["worker.autoscaling.minReplicas (5) is greater than worker.autoscaling.maxReplicas (3)"],
    ),
]


@pytest.mark.parametrize(
    ("set_values", "messages"), REJECTED, ids=[",".join(r[0]) for r in REJECTED]
)
def test_bad_values_are_rejected_with_a_clear_message(
    set_values: dict[str, str], messages: list[str]
) -> None:
    proc = helm(*template_args(set_values=set_values), check=False)
    assert proc.returncode != 0, f"accepted {set_values}"
    for message in messages:
        assert message in proc.stderr, proc.stderr


def test_bad_values_in_a_values_file_are_rejected(tmp_path: Any) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("worker:\n  autoscaling:\n    maxReplica: 4\n")
    proc = helm(*template_args(), "-f", str(path), check=False)
    assert proc.returncode != 0
    assert "/worker/autoscaling" in proc.stderr
    assert "'maxReplica' not allowed" in proc.stderr


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The node a `$ref` (to the schema's own `$defs`) stands for; any other node as it is."""
    while "$ref" in node:
        prefix = "#/$defs/"
        ref = node["$ref"]
        assert ref.startswith(prefix), ref
        node = schema["$defs"][ref.removeprefix(prefix)]
    return node


def _walk(
    schema: dict[str, Any], node: dict[str, Any], path: str = ""
) -> list[tuple[str, dict[str, Any]]]:
    node = _resolve(node, schema)
    out = [(path or "/", node)]
    for key, sub in node.get("properties", {}).items():
        out += _walk(schema, sub, f"{path}/{key}")
    return out


def test_schema_is_strict_and_covers_every_default_value() -> None:
    schema = _schema()
    walked = _walk(schema, schema)
    for path, node in walked:
        if "properties" in node:
            assert node.get("additionalProperties") is False, path
    # Shared sub-schemas ($defs: resources, image, pdb, ...) are strict too, and used.
    text = json.dumps(schema["properties"])
    for name, node in schema["$defs"].items():
        assert f'"#/$defs/{name}"' in json.dumps(schema), f"unused $defs/{name}"
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"$defs/{name}"
    assert '"$ref"' in text

    def check(value: Any, node: dict[str, Any], path: str) -> None:
        node = _resolve(node, schema)
        if isinstance(value, dict) and "properties" in node:
            assert set(value) == set(node["properties"]), path
            for key, sub in value.items():
                check(sub, node["properties"][key], f"{path}/{key}")

    check(yaml.safe_load((CHART / "values.yaml").read_text()), schema, "")


def test_every_value_is_documented_where_it_is_set() -> None:
    """values.yaml: each top-level and second-level leaf key has a comment line right above it.

    Deeper keys belong to a documented block (resources, scaleUp, ...), and the children of the
    two securityContext blocks are Kubernetes' own fields, documented as a block.
    """
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    parent = ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        key = stripped.split(":")[0]
        if indent == 0:
            parent = key
        if indent > 2 or parent in {"podSecurityContext", "securityContext"}:
            continue
        is_block = stripped.endswith(":")
        if not is_block and not lines[i - 1].strip().startswith("#"):
            undocumented.append(f"{parent}.{key}" if indent else key)
    # Well-known Kubernetes pass-through fields need no prose of their own.
    passthrough = ("nodeSelector", "tolerations", "affinity")
    assert not [k for k in undocumented if not k.endswith(passthrough)], undocumented
