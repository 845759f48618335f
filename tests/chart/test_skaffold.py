"""skaffold.yaml names only things that exist: Dockerfiles, the chart, values files, value keys,
artifacts in its templates, the Service it port-forwards; and each release renders.

Skaffold itself is not run here (no cluster, no registry): this is what can go stale silently.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, ROOT, helm

pytestmark = pytest.mark.chart

CONFIG: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
PLACEHOLDER = re.compile(r"\{\{\s*\.IMAGE_(REPO|TAG|DIGEST)_([A-Za-z0-9_]+)\s*\}\}")
SAMPLE = {
    "REPO": "registry.example.com/queue-worker/x",
    "TAG": "v1.2.3-4-gabcdef0",
    "DIGEST": "sha256:" + "b" * 64,
}


def _sanitized(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", image)


ARTIFACTS = {_sanitized(a["image"]): a for a in CONFIG["build"]["artifacts"]}


def _releases() -> list[tuple[str, dict[str, Any]]]:
    out = [("default", r) for r in CONFIG["deploy"]["helm"]["releases"]]
    for profile in CONFIG["profiles"]:
        for release in profile.get("deploy", {}).get("helm", {}).get("releases", []):
            out.append((profile["name"], release))
    return out


RELEASES = _releases()


def test_one_artifact_per_image_with_its_own_dockerfile() -> None:
    dockerfiles = []
    for artifact in CONFIG["build"]["artifacts"]:
        context = ROOT / artifact["context"]
        dockerfile = context / artifact["docker"]["dockerfile"]
        assert dockerfile.is_file(), dockerfile
        dockerfiles.append(dockerfile.name)
    assert sorted(dockerfiles) == ["Dockerfile.api", "Dockerfile.worker"]


def test_profiles_are_dev_and_prod_each_with_a_comment() -> None:
    assert [p["name"] for p in CONFIG["profiles"]] == ["dev", "prod"]
    lines = (ROOT / "skaffold.yaml").read_text().splitlines()
    for profile in CONFIG["profiles"]:
        index = lines.index(f"  - name: {profile['name']}")
        assert lines[index - 1].strip().startswith("#"), profile["name"]


def test_profile_patches_point_at_existing_fields() -> None:
    for profile in CONFIG["profiles"]:
        for patch in profile.get("patches", []):
            node: Any = CONFIG
            for part in patch["path"].strip("/").split("/"):
                assert part in node, (profile["name"], patch["path"])
                node = node[part]


def _has_key(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize(("profile", "release"), RELEASES, ids=[p for p, _ in RELEASES])
def test_release_paths_and_value_keys_exist(profile: str, release: dict[str, Any]) -> None:
    assert (ROOT / release["chartPath"]).resolve() == CHART
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for values_file in release["valuesFiles"]:
        assert (ROOT / values_file).is_file(), values_file
    for key, template in release["setValueTemplates"].items():
        assert _has_key(values, key), f"{profile}: {key} is not a chart value"
        for _, artifact in PLACEHOLDER.findall(template):
            assert artifact in ARTIFACTS, f"{profile}: {template} names no artifact"
        # Each image's values come from its own artifact.
        component = key.split(".")[0]
        assert PLACEHOLDER.findall(template)[0][1] == f"queue_worker_{component}"


@pytest.mark.parametrize(("profile", "release"), RELEASES, ids=[p for p, _ in RELEASES])
def test_release_renders_with_skaffolds_values(profile: str, release: dict[str, Any]) -> None:
    args = ["template", release["name"], str(CHART), "--namespace", release["namespace"]]
    for values_file in release["valuesFiles"]:
        args += ["-f", str(ROOT / values_file)]
    for key, template in release["setValueTemplates"].items():
        value = PLACEHOLDER.sub(lambda m: SAMPLE[m.group(1)], template)
        args += ["--set", f"{key}={value}"]
    rendered = [d for d in yaml.safe_load_all(helm(*args).stdout) if d]
    images = {
        c["image"]
        for d in rendered
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    expected_tail = f"@{SAMPLE['DIGEST']}" if profile == "prod" else f":{SAMPLE['TAG']}"
    assert {i for i in images if i.startswith(SAMPLE["REPO"])}, images
    assert all(i.endswith(expected_tail) for i in images if i.startswith(SAMPLE["REPO"]))


def test_port_forward_names_the_api_service_of_the_release() -> None:
    (forward,) = CONFIG["portForward"]
    (release,) = CONFIG["deploy"]["helm"]["releases"]
    assert forward["resourceType"] == "service"
    assert forward["namespace"] == release["namespace"]
    rendered = helm("template", release["name"], str(CHART)).stdout
    services = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "Service"
    }
    assert forward["resourceName"] in services
    ports = [p["port"] for p in services[forward["resourceName"]]["spec"]["ports"]]
    assert forward["port"] in ports
