"""Assertions over the rendered objects: the wiring a cluster would only reveal at run time.

Selectors match pod labels, the HPA targets the worker Deployment with the metric the adapter
serves, probes hit paths and ports the services really serve, the env the chart writes parses with
the services' own settings loader, referenced Secret keys exist, every container runs restricted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

import services
from services.api.routes.health import routes as api_health_routes
from services.cli import build_parser
from services.common.names import WORKFLOW_QUEUE
from services.common.settings import load_settings
from services.drain.plan import Drain, drain_deployment, drain_name
from services.worker.health_server import build_health_app
from tests.chart.helm import (
    CHART,
    ROOT,
    SCENARIOS,
    Obj,
    Rendered,
    Scenario,
    container,
    env_of,
    helm,
    kn,
    name,
    pod_labels,
    pod_specs,
    render,
    render_scenario,
    template_args,
)

pytestmark = pytest.mark.chart

BY_NAME = {s.name: s for s in SCENARIOS}
API_PATHS = {route.path for route in api_health_routes}
WORKER_PATHS = {
    route.path  # type: ignore[attr-defined]
    for route in build_health_app(CollectorRegistry(), lambda: (True, "ok")).routes
}
METRIC_NAME = "queue_worker_queue_backlog"


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _workloads(rendered: Rendered) -> list[Obj]:
    return [o for o in rendered.objects if o["kind"] in {"Deployment", "Job", "Pod"}]


def _worker(rendered: Rendered) -> Obj:
    return rendered.get("Deployment", name("worker"))


def _worker_container(rendered: Rendered) -> Obj:
    return container(_worker(rendered)["spec"]["template"]["spec"], "worker")


def _api_container(rendered: Rendered) -> Obj:
    return container(rendered.get("Deployment", name("api"))["spec"]["template"]["spec"], "api")


@pytest.fixture(params=SCENARIOS, ids=lambda s: s.name)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    scenario: Scenario = request.param
    return render_scenario(scenario)


# ---------------------------------------------------------------- selectors, labels, ports


def test_deployment_selectors_match_their_pod_labels(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector, kn(deployment)
        assert _selects(selector, pod_labels(deployment)), kn(deployment)


def test_selectors_are_unique_per_component(rendered: Rendered) -> None:
    """No Deployment's selector also matches another workload's pods (no fighting owners)."""
    for deployment in rendered.of_kind("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        others = [w for w in _workloads(rendered) if w is not deployment]
        assert not [kn(o) for o in others if _selects(selector, pod_labels(o))]


def test_services_select_pods_that_have_the_target_port(rendered: Rendered) -> None:
    for service in rendered.of_kind("Service"):
        selected = [
            d
            for d in rendered.of_kind("Deployment")
            if _selects(service["spec"]["selector"], pod_labels(d))
        ]
        assert len(selected) == 1, kn(service)
        ports = {
            p["name"]
            for c in selected[0]["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (kn(service), port)


def _drain_deployment(rendered: Rendered) -> Obj:
    """The Deployment the drainer would create from this rendering's worker Deployment."""
    worker = _worker(rendered)
    drain = Drain("v1", drain_name(worker["metadata"]["name"], "v1"), "repo/worker:1", False, 1)
    return drain_deployment(worker, drain)


def test_pdbs_and_network_policies_select_existing_pods(rendered: Rendered) -> None:
    workloads = _workloads(rendered)
    if rendered.find("Deployment", name("drainer")):
        workloads.append(_drain_deployment(rendered))  # created at run time by the drainer
    for obj in [*rendered.of_kind("PodDisruptionBudget"), *rendered.of_kind("NetworkPolicy")]:
        selector = (
            obj["spec"]["selector"]["matchLabels"]
            if obj["kind"] == "PodDisruptionBudget"
            else obj["spec"]["podSelector"]["matchLabels"]
        )
        assert any(_selects(selector, pod_labels(w)) for w in workloads), kn(obj)


def test_drain_pods_are_nobody_elses_and_get_the_worker_pods_network_rules() -> None:
    rendered = render_scenario(BY_NAME["production"])
    drain = _drain_deployment(rendered)
    labels = pod_labels(drain)
    # Neither the worker Deployment, its PDB, its Service nor its HPA's target selects them.
    for obj in [*_workloads(rendered), *rendered.of_kind("PodDisruptionBudget")]:
        selector = (obj["spec"].get("selector") or {}).get("matchLabels", {})
        assert not (selector and _selects(selector, labels)), kn(obj)
    for service in rendered.of_kind("Service"):
        assert not _selects(service["spec"]["selector"], labels), kn(service)
    policy = rendered.get("NetworkPolicy", name("worker-drain"))
    worker_policy = rendered.get("NetworkPolicy", name("worker"))
    assert _selects(policy["spec"]["podSelector"]["matchLabels"], labels)
    assert policy["spec"]["ingress"] == worker_policy["spec"]["ingress"]
    assert policy["spec"]["egress"] == worker_policy["spec"]["egress"]


def test_workers_may_only_patch_their_own_pods_deletion_cost() -> None:
    rendered = render_scenario(BY_NAME["production"])
    worker = _worker(rendered)
    spec = worker["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == name("worker")
    env = env_of(container(spec, "worker"))
    assert env["WORKER_POD_DELETION_COST"]["value"] == "true"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    role = rendered.get("Role", name("worker"))
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}]
    policy = rendered.get(
        "ValidatingAdmissionPolicy", f"queue-{name('worker')}-own-pod-deletion-cost"
    )
    assert policy["spec"]["matchConditions"][0]["expression"].endswith(
        f'"system:serviceaccount:queue:{name("worker")}"'
    )
    text = " ".join(v["expression"] for v in policy["spec"]["validations"])
    assert "authentication.kubernetes.io/pod-name" in text
    assert "object.spec == oldObject.spec" in text
    off = render(("production.yaml",), {"worker.podDeletionCost.enabled": "false"})
    assert off.find("Role", name("worker")) is None
    assert off.of_kind("ValidatingAdmissionPolicy") == []
    assert "WORKER_POD_DELETION_COST" not in env_of(
        container(_worker(off)["spec"]["template"]["spec"], "worker")
    )


def test_only_the_drainer_talks_to_the_kubernetes_api_and_only_about_deployments() -> None:
    rendered = render_scenario(BY_NAME["production"])
    drainer = rendered.get("Deployment", name("drainer"))
    spec = drainer["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is True
    assert spec["serviceAccountName"] == name("drainer")
    role = rendered.get("Role", name("drainer"))
    assert role["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "verbs": ["get", "list", "create", "patch", "delete"],
        }
    ]
    binding = rendered.get("RoleBinding", name("drainer"))
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": name("drainer"), "namespace": "queue"}
    ]
    env = env_of(container(spec, "drainer"))
    assert env["WORKER_DEPLOYMENT"]["value"] == _worker(rendered)["metadata"]["name"]
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # The worker pods record the image the drainer would run for their version.
    worker_env = env_of(_worker_container(rendered))
    assert worker_env["WORKER_IMAGE"]["value"] == _worker_container(rendered)["image"]
    assert worker_env["WORKER_ROLE"]["value"] == "main"
    policy = rendered.get("NetworkPolicy", name("drainer"))
    egress_ports = {p["port"] for r in policy["spec"]["egress"] for p in r["ports"]}
    assert egress_ports == {53, 5432, 443, 6443}
    off = render(("production.yaml",), {"worker.drain.enabled": "false"})
    assert not off.find("Deployment", name("drainer"))
    assert off.find("Role", name("drainer")) is None
    assert not off.find("NetworkPolicy", name("worker-drain"))


def test_every_object_carries_the_standard_labels(rendered: Rendered) -> None:
    for obj in rendered.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "qw", kn(obj)
        assert labels["app.kubernetes.io/name"] == "queue-worker", kn(obj)
        assert labels["app.kubernetes.io/managed-by"] == "Helm", kn(obj)
        assert len(obj["metadata"]["name"]) <= 63, kn(obj)


def test_common_labels_reach_every_object_and_every_pod_but_no_selector() -> None:
    rendered = render(
        set_values={
            "commonLabels.team": "payments",
            "worker.podLabels.team": "workers",
            "api.podLabels.tier": "web",
        }
    )
    for obj in rendered.objects:
        assert obj["metadata"]["labels"]["team"] == "payments", kn(obj)
    workloads = _workloads(rendered)
    assert {w["kind"] for w in workloads} == {"Deployment", "Job", "Pod"}
    for w in workloads:
        labels = pod_labels(w)
        # A component's own podLabels win over commonLabels on its pods.
        want = "workers" if w["metadata"]["name"] == name("worker") else "payments"
        assert labels["team"] == want, kn(w)
        if w["kind"] == "Deployment":
            assert "team" not in w["spec"]["selector"]["matchLabels"], kn(w)
    assert pod_labels(rendered.get("Deployment", name("api")))["tier"] == "web"


def test_the_version_label_follows_the_image_tags() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())

    def versions(rendered: Rendered) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for obj in rendered.objects:
            labels = obj["metadata"]["labels"]
            out.setdefault(labels["app.kubernetes.io/component"], set()).add(
                labels["app.kubernetes.io/version"]
            )
        return out

    default = versions(render())
    assert set().union(*default.values()) == {chart["appVersion"]}
    tagged = versions(render(set_values={"worker.image.tag": "1.4.2", "api.image.tag": "1.4.1"}))
    assert tagged.pop("api") == {"1.4.1"}
    assert tagged["worker"] == tagged["migrations"] == {"1.4.2"}
    assert set().union(*tagged.values()) == {"1.4.2"}
    # A tag may be 128 characters and start with "_"; a label value may not.
    odd = versions(render(set_values={"worker.image.tag": "_" + "9" * 100}))
    assert odd["worker"] == {"9" * 63}


def test_container_args_are_accepted_by_the_real_cli(rendered: Rendered) -> None:
    parser = build_parser()
    for _, spec in pod_specs(rendered):
        for c in spec["containers"]:
            if c["name"] in {"api", "worker", "migrate", "drainer"}:
                args = parser.parse_args(c["args"])
                assert args.command == c["name"]
                if c["name"] == "api":
                    assert args.port == c["ports"][0]["containerPort"]
                if c["name"] in {"worker", "drainer"}:
                    assert args.metrics_port == c["ports"][0]["containerPort"]


# ---------------------------------------------------------------- probes


def test_probes_hit_paths_and_ports_the_services_serve(rendered: Rendered) -> None:
    served = {"api": API_PATHS, "worker": WORKER_PATHS}
    for component, paths in served.items():
        c = container(rendered.get("Deployment", name(component))["spec"]["template"]["spec"],
                      component)  # fmt: skip
        port_names = {p["name"] for p in c["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = c[probe]["httpGet"]
            assert http["path"] in paths, (component, probe, http)
            assert http["port"] in port_names, (component, probe, http)
        # Readiness is the real check (database reachable); liveness must not restart a pod
        # because the database is down.
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "/metrics" in API_PATHS
    assert "/metrics" in WORKER_PATHS


# ---------------------------------------------------------------- security


def test_every_container_runs_restricted(rendered: Rendered) -> None:
    for owner, spec in pod_specs(rendered):
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, kn(owner)
        assert pod_sc["runAsUser"] != 0, kn(owner)
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", kn(owner)
        # No token anywhere but in the drainer, which needs the Kubernetes API, and the workers
        # when they keep their pod-deletion cost (patching their own pod only).
        keeps_cost = any(
            e["name"] == "WORKER_POD_DELETION_COST"
            for c in spec["containers"]
            for e in c.get("env", [])
        )
        want_token = owner["metadata"]["name"] == name("drainer") or keeps_cost
        assert spec["automountServiceAccountToken"] is want_token, kn(owner)
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, kn(owner)
            assert sc["readOnlyRootFilesystem"] is True, kn(owner)
            assert sc["capabilities"]["drop"] == ["ALL"], kn(owner)
            assert not sc.get("privileged", False), kn(owner)
            assert sc.get("runAsUser", pod_sc["runAsUser"]) != 0, kn(owner)
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (kn(owner), kind)


def test_app_pods_run_as_the_images_fixed_uid() -> None:
    dockerfile = (ROOT / "Dockerfile.api").read_text()
    assert "ARG APP_UID=10001" in dockerfile
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 10001


# ---------------------------------------------------------------- environment and secrets


def _env_values(c: Obj, tokens_file: Path) -> dict[str, str]:
    """The container's env as the process would see it (Secrets and fieldRefs filled in)."""
    out: dict[str, str] = {}
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    for key, entry in env_of(c).items():
        if key == "API_TOKENS_FILE":
            assert str(Path(entry["value"]).parent) in mounts, entry
            tokens_file.write_text("an-api-token-of-20-chars\n")
            out[key] = str(tokens_file)
        elif "value" in entry:
            out[key] = str(entry["value"])
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            out[key] = "postgresql://app:pw@db.example.com:5432/queue_worker"
        elif "fieldRef" in entry.get("valueFrom", {}):
            out[key] = "qw-queue-worker-worker-7d9f8-abcde"
    return out


def test_env_parses_with_the_services_settings_loader(rendered: Rendered, tmp_path: Path) -> None:
    drainer = rendered.find("Deployment", name("drainer"))
    containers = [_api_container(rendered), _worker_container(rendered)]
    if drainer is not None:
        containers.append(container(drainer["spec"]["template"]["spec"], "drainer"))
    for c in containers:
        # Raises SettingsError on a bad value, e.g. a dead-after shorter than two heartbeats.
        settings = load_settings(_env_values(c, tmp_path / "tokens"))
        assert settings.database_url.startswith("postgresql://")


def test_referenced_secret_keys_exist(rendered: Rendered) -> None:
    made = {
        s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {}))
        for s in rendered.of_kind("Secret")
    }
    for owner, spec in pod_specs(rendered):
        for c in spec["containers"]:
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                if ref["name"] in made:
                    assert ref["key"] in made[ref["name"]], (kn(owner), ref)
                else:
                    # Not made by the chart: it must be one the values name as existing.
                    assert ref["name"] in {"queue-worker-database", "queue-worker-database-owner"}
                    assert ref["key"] == "url"
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] not in made  # the user's own Secret
                assert [i["key"] for i in volume["secret"]["items"]] == ["tokens"]


def test_api_tokens_come_from_a_mounted_secret() -> None:
    rendered = render(set_values={"api.auth.existingSecret": "api-tokens"})
    spec = rendered.get("Deployment", name("api"))["spec"]["template"]["spec"]
    c = container(spec, "api")
    path = Path(env_of(c)["API_TOKENS_FILE"]["value"])
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == str(path.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "api-tokens"
    assert volume["secret"]["items"] == [{"key": "tokens", "path": path.name}]
    # Readable by the pod's group (fsGroup), not by others.
    assert volume["secret"]["defaultMode"] == 0o440
    assert "API_TOKENS_FILE" not in env_of(_api_container(render()))


def test_chart_made_secret_exists_before_the_migrations_job() -> None:
    rendered = render_scenario(BY_NAME["defaults"])
    secret = rendered.get("Secret", name("database"))
    job = rendered.get("Job", name("migrate"))
    assert "pre-install" in secret["metadata"]["annotations"]["helm.sh/hook"]
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert secret["stringData"]["url"] == (
        f"postgresql://queue_worker:queue-worker-try-only@{name('postgres')}:5432/queue_worker"
    )


def test_worker_identity_comes_from_the_pod_name_and_never_the_image_tag() -> None:
    rendered = render(set_values={"worker.image.tag": "1.4.2", "api.image.tag": "1.4.1"})
    c = _worker_container(rendered)
    env = env_of(c)
    assert env["DBOS__VMID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # No pin: DBOS hashes the workflows' source, so a new tag with the same workflow code keeps
    # running what is in flight (tests/integration/test_releases.py).
    assert "DBOS__APPVERSION" not in env
    assert c["image"] == "queue-worker-worker:1.4.2"
    assert env["RUN_MIGRATIONS"]["value"] == "false"
    # The API enqueues without a version: it must not pin one.
    assert "DBOS__APPVERSION" not in env_of(_api_container(rendered))


def test_a_pinned_workflow_version_is_the_only_source_of_dbos_appversion() -> None:
    rendered = render(
        set_values={"worker.image.tag": "1.4.2", "worker.workflowVersion": "orders-v3"}
    )
    env = env_of(_worker_container(rendered))
    assert env["DBOS__APPVERSION"] == {"name": "DBOS__APPVERSION", "value": "orders-v3"}
    assert "DBOS__APPVERSION" not in env_of(_api_container(rendered))
    # And the services accept it (the schema and the settings loader agree on its shape).
    assert load_settings({"DBOS__APPVERSION": "orders-v3"}).pinned_app_version == "orders-v3"


def test_default_tag_is_the_app_version_and_a_digest_pins_the_image() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == services.__version__  # scripts/images.sh's default tag
    c = _worker_container(render())
    assert c["image"] == f"queue-worker-worker:{chart['appVersion']}"
    assert "DBOS__APPVERSION" not in env_of(c)
    digest = "sha256:" + "a" * 64
    pinned = _worker_container(render(set_values={"worker.image.digest": digest}))
    assert pinned["image"] == f"queue-worker-worker@{digest}"


def test_fairness_limits_reach_the_workers_and_parse(tmp_path: Path) -> None:
    env = env_of(_worker_container(render()))
    assert not {"WORKER_PARTITION_CONCURRENCY", "WORKER_RATE_LIMIT"} & set(env)
    c = _worker_container(
        render(
            set_values={
                "worker.partitionConcurrency": "2",
                "worker.rateLimit.limit": "50",
                "worker.rateLimit.periodSeconds": "10",
            }
        )
    )
    env = env_of(c)
    assert env["WORKER_PARTITION_CONCURRENCY"]["value"] == "2"
    assert env["WORKER_RATE_LIMIT"]["value"] == "50"
    assert env["WORKER_RATE_PERIOD_SECONDS"]["value"] == "10"
    settings = load_settings(_env_values(c, tmp_path / "tokens"))
    assert (settings.worker_partition_concurrency, settings.worker_rate_limit) == (2, 50)
    assert settings.worker_rate_period_seconds == 10.0
    assert "WORKER_PARTITION_CONCURRENCY" not in env_of(_api_container(render()))


def test_without_the_migrations_job_workers_migrate_themselves() -> None:
    rendered = render_scenario(BY_NAME["minimal-external-url"])
    assert not rendered.of_kind("Job")
    assert env_of(_worker_container(rendered))["RUN_MIGRATIONS"]["value"] == "true"


# ---------------------------------------------------------------- worker scaling


@pytest.mark.parametrize("concurrency", [10, 7])
def test_hpa_targets_the_worker_deployment_on_the_backlog_metric(concurrency: int) -> None:
    rendered = render(set_values={"worker.concurrency": str(concurrency)})
    (hpa,) = rendered.of_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    worker = _worker(rendered)
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        worker["apiVersion"],
        worker["kind"],
        worker["metadata"]["name"],
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == METRIC_NAME
    assert metric["external"]["metric"]["selector"] == {"matchLabels": {"queue": WORKFLOW_QUEUE}}
    # One values key feeds both: desired replicas = ceil(backlog / WORKER_CONCURRENCY).
    assert metric["external"]["target"] == {
        "type": "AverageValue",
        "averageValue": str(concurrency),
    }
    env = env_of(_worker_container(rendered))
    assert env["WORKER_CONCURRENCY"]["value"] == str(concurrency)
    backlog = 45
    assert math.ceil(backlog / float(metric["external"]["target"]["averageValue"])) == math.ceil(
        backlog / concurrency
    )
    # Autoscaled: the Deployment leaves replicas to the HPA (an upgrade must not reset them).
    assert "replicas" not in worker["spec"]


def test_hpa_scales_up_fast_and_down_slowly() -> None:
    (hpa,) = render().of_kind("HorizontalPodAutoscaler")
    up, down = hpa["spec"]["behavior"]["scaleUp"], hpa["spec"]["behavior"]["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 0
    assert up["selectPolicy"] == "Max"
    assert {(p["type"], p["value"], p["periodSeconds"]) for p in up["policies"]} == {
        ("Percent", 100, 15),
        ("Pods", 4, 15),
    }
    assert down["stabilizationWindowSeconds"] == 300


def test_hpa_matches_the_reference_hpa_in_deploy() -> None:
    """deploy/prometheus-adapter/worker-hpa.yaml (for installs without the chart) and the chart
    render the same autoscaler for a release named queue-worker."""
    reference = yaml.safe_load((ROOT / "deploy/prometheus-adapter/worker-hpa.yaml").read_text())
    rendered = render(
        set_values={
            "worker.autoscaling.minReplicas": str(reference["spec"]["minReplicas"]),
            "worker.autoscaling.maxReplicas": str(reference["spec"]["maxReplicas"]),
        },
        release="queue-worker",
    )
    (hpa,) = rendered.of_kind("HorizontalPodAutoscaler")
    assert hpa["metadata"]["name"] == reference["metadata"]["name"]
    assert hpa["spec"] == reference["spec"]


def test_hpa_off_gives_a_fixed_replica_count_for_manual_scaling() -> None:
    rendered = render_scenario(BY_NAME["production-hpa-off"])
    assert not rendered.of_kind("HorizontalPodAutoscaler")
    assert not rendered.of_kind("ScaledObject")
    assert _worker(rendered)["spec"]["replicas"] == 2


def test_keda_replaces_the_hpa_with_the_same_target() -> None:
    rendered = render_scenario(BY_NAME["production-keda"])
    assert not rendered.of_kind("HorizontalPodAutoscaler")
    (scaled,) = rendered.of_kind("ScaledObject")
    worker = _worker(rendered)
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]
    assert scaled["spec"]["minReplicaCount"] == 0
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert (
        trigger["metadata"]["threshold"]
        == env_of(_worker_container(rendered))["WORKER_CONCURRENCY"]["value"]
    )
    # The series prometheus-adapter serves, for this release's namespace only.
    assert trigger["metadata"]["query"] == (
        'max by (queue) (queue_worker:queue_backlog:max{queue="workflow-queue",namespace="queue"})'
    )


def test_keda_reads_a_lost_signal_as_an_error_and_falls_back_instead_of_scaling_away() -> None:
    scaled = render_scenario(BY_NAME["production-keda"]).of_kind("ScaledObject")[0]
    (trigger,) = scaled["spec"]["triggers"]
    # KEDA's default (true) turns an empty query result into 0, i.e. scale to minReplicas (0).
    assert trigger["metadata"]["ignoreNullValues"] == "false"
    # Fallback works only on AverageValue targets (KEDA's ScaledObject reference, "fallback").
    assert trigger["metricType"] == "AverageValue"
    assert scaled["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 10}
    assert scaled["spec"]["fallback"]["replicas"] > scaled["spec"]["minReplicaCount"]
    # Never more than the workers the database was sized for.
    capped = render(
        ("production.yaml", "keda.yaml"),
        {"worker.autoscaling.maxReplicas": "4", "worker.keda.fallback.replicas": "6"},
    ).of_kind("ScaledObject")[0]
    assert capped["spec"]["fallback"]["replicas"] == 4
    # The reference object in deploy/ for clusters without the chart says the same.
    reference = yaml.safe_load((ROOT / "deploy" / "keda" / "scaledobject.yaml").read_text())
    assert reference["spec"]["fallback"]["replicas"] == reference["spec"]["maxReplicaCount"]
    (ref_trigger,) = reference["spec"]["triggers"]
    assert ref_trigger["metadata"]["ignoreNullValues"] == "false"


@pytest.mark.parametrize("grace", [30, 100])
def test_termination_grace_covers_the_workers_drain(grace: int) -> None:
    rendered = render(set_values={"worker.shutdownGraceSeconds": str(grace)})
    spec = _worker(rendered)["spec"]["template"]["spec"]
    env = env_of(container(spec, "worker"))
    assert env["WORKER_SHUTDOWN_GRACE_SECONDS"]["value"] == str(grace)
    assert spec["terminationGracePeriodSeconds"] == grace + 15


# ---------------------------------------------------------------- migrations


def test_migrations_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    job = render_scenario(BY_NAME["production"]).get("Job", name("migrate"))
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = job["spec"]["template"]["spec"]
    c = container(spec, "migrate")
    assert c["args"] == ["migrate", "--app-role", "queue_worker_app"]
    assert c["image"].startswith("registry.example.com/queue-worker/worker:")
    ref = env_of(c)["DBOS_SYSTEM_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "queue-worker-database-owner", "key": "url"}
    # A hook runs before the release's ServiceAccount exists: it must not depend on it.
    assert "serviceAccountName" not in spec
    assert spec["restartPolicy"] == "Never"


# Helm waits for a hook Job for --timeout, 5m unless given (helm upgrade --help).
HELM_DEFAULT_TIMEOUT_SECONDS = 300


def test_the_migrations_deadline_expires_before_helm_stops_waiting() -> None:
    """Otherwise Helm reports a bare timeout while the Job runs on, and the Job's own failure
    (its pod and logs) comes later, after the upgrade was already declared failed."""
    for scenario in SCENARIOS:
        job = render_scenario(scenario).find("Job", name("migrate"))
        if job is None:
            continue
        deadline = job["spec"]["activeDeadlineSeconds"]
        assert deadline <= HELM_DEFAULT_TIMEOUT_SECONDS - 60, scenario.name
    values = (CHART / "values.yaml").read_text()
    assert "--timeout" in values  # the values comment says what to raise along with it


def test_with_the_throwaway_postgres_the_first_install_migrates_beside_the_pods() -> None:
    # A post-install hook would deadlock `helm install --wait` (the pods wait for the schema, Helm
    # waits for the pods before post-install hooks): the first install's Job is an ordinary object
    # of the release; upgrades migrate in the pre-upgrade hook (tests/cluster/ run both for real).
    rendered = render_scenario(BY_NAME["defaults"])
    install = rendered.get("Job", name("migrate-install"))
    assert "helm.sh/hook" not in install["metadata"].get("annotations", {})
    hook = rendered.get("Job", name("migrate"))
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    assert install["spec"]["template"] == hook["spec"]["template"]
    upgrade = helm(*template_args(("dev.yaml",)), "--is-upgrade").stdout
    assert "migrate-install" not in upgrade


# ---------------------------------------------------------------- ingress, network, monitoring


def test_ingress_routes_the_api_with_tls_and_hides_internal_endpoints() -> None:
    rendered = render_scenario(BY_NAME["production"])
    (ingress,) = rendered.of_kind("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"secretName": "queue-worker-tls", "hosts": ["queue-worker.example.com"]}
    ]
    service = rendered.get("Service", name("api"))
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "queue-worker.example.com"
    paths = {p["path"] for p in rule["http"]["paths"]}
    assert {"/api", "/"} <= paths
    assert not paths & {"/metrics", "/healthz", "/readyz"}
    for p in rule["http"]["paths"]:
        assert p["backend"]["service"]["name"] == service["metadata"]["name"]
        assert p["backend"]["service"]["port"]["name"] in service_ports


def test_network_policies_admit_only_what_is_needed() -> None:
    rendered = render_scenario(BY_NAME["production"])
    api = rendered.get("NetworkPolicy", name("api"))
    worker = rendered.get("NetworkPolicy", name("worker"))
    assert [p["port"] for r in api["spec"]["ingress"] for p in r["ports"]] == ["http"]
    assert [p["port"] for r in worker["spec"]["ingress"] for p in r["ports"]] == ["metrics"]
    peers = api["spec"]["ingress"][0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in peers
    migrate = rendered.get("NetworkPolicy", name("migrate"))
    assert migrate["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert migrate["spec"]["ingress"] == []  # nothing talks to the migrations pod
    for policy in (api, migrate):
        egress_ports = {p["port"] for r in policy["spec"]["egress"] for p in r["ports"]}
        assert egress_ports == {53, 5432}, kn(policy)
    # Workers also reach the Kubernetes API, to keep their pod-deletion cost.
    egress_ports = {p["port"] for r in worker["spec"]["egress"] for p in r["ports"]}
    assert egress_ports == {53, 5432, 443, 6443}


@pytest.mark.parametrize("scenario", ["defaults", "production"])
def test_the_migrations_pod_is_covered_by_a_policy_from_its_first_run(scenario: str) -> None:
    rendered = render_scenario(BY_NAME[scenario])
    job = rendered.get("Job", name("migrate"))
    policy = rendered.get("NetworkPolicy", name("migrate"))
    assert _selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels(job))
    # Only the migrations pods (the hook's and, with the throwaway Postgres, the first install's
    # Job): not the API's, the workers' or the database's.
    migrations = {name("migrate"), name("migrate-install")}
    others = [w for w in _workloads(rendered) if w["metadata"]["name"] not in migrations]
    assert not [kn(w) for w in others if _selects(policy["spec"]["podSelector"]["matchLabels"],
                                                  pod_labels(w))]  # fmt: skip
    # A hook created before the Job in every phase the Job runs in (normal objects would only
    # appear after the pre-install hooks).
    job_hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    policy_hooks = set(policy["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert policy_hooks >= job_hooks - {"post-install"} | {"pre-install"}
    assert int(policy["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    if scenario == "defaults":  # the throwaway Postgres admits the migrations pod
        pg = rendered.get("NetworkPolicy", name("postgres"))
        (peer,) = pg["spec"]["ingress"][0]["from"]
        assert _selects(peer["podSelector"]["matchLabels"], pod_labels(job))


def test_service_monitors_scrape_the_api_service_and_the_worker_pods() -> None:
    rendered = render_scenario(BY_NAME["production"])
    monitors = rendered.of_kind("ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {name("api"), name("worker")}
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        (service,) = [
            s
            for s in rendered.of_kind("Service")
            if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    worker_service = rendered.get("Service", name("worker"))
    assert worker_service["spec"]["clusterIP"] == "None"  # every pod is scraped, not one


def test_pod_annotations_for_prometheus_without_the_operator() -> None:
    rendered = render()
    for component, port in (("api", "8000"), ("worker", "9000")):
        annotations = rendered.get("Deployment", name(component))["spec"]["template"]["metadata"][
            "annotations"
        ]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == port
        assert annotations["prometheus.io/path"] == "/metrics"


def test_helm_test_pod_checks_readyz_through_the_api_service() -> None:
    rendered = render()
    (pod,) = rendered.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    assert c["command"][-1] == f"http://{name('api')}:80/readyz"
    assert c["image"] == _api_container(rendered)["image"]


def test_monitoring_objects_are_off_by_default() -> None:
    kinds = {o["kind"] for o in render().objects}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Ingress"}


def test_try_out_postgres_is_off_in_production() -> None:
    rendered = render_scenario(BY_NAME["production"])
    assert not rendered.find("Deployment", name("postgres"))
    assert not rendered.of_kind("Secret")


def _no_blank_lines_in(rendered: Rendered) -> list[Any]:
    return [line for line in rendered.text.splitlines() if line and not line.strip()]


def test_rendered_yaml_has_no_whitespace_only_lines(rendered: Rendered) -> None:
    assert not _no_blank_lines_in(rendered)


def test_the_wait_time_target_replaces_the_depth_metric() -> None:
    rendered = render(set_values={"worker.autoscaling.targetWaitSeconds": "30"})
    hpa = rendered.get("HorizontalPodAutoscaler", name("worker"))
    metrics = {
        m["external"]["metric"]["name"]: m["external"]["target"]["averageValue"]
        for m in hpa["spec"]["metrics"]
    }
    # concurrency 10: one pod clears 10 x 30 work-seconds within the target, and runs 10 slots.
    assert metrics == {"queue_worker_queue_work_seconds": "300", "queue_worker_needed_slots": "10"}
    depth = render().get("HorizontalPodAutoscaler", name("worker"))
    assert [m["external"]["metric"]["name"] for m in depth["spec"]["metrics"]] == [
        "queue_worker_queue_backlog"
    ]


def test_retention_values_reach_the_workers_settings(tmp_path: Path) -> None:
    on = load_settings(_env_values(_worker_container(render()), tmp_path / "tokens"))
    assert on.retention_max_age_seconds == 2592000
    assert on.retention_batch_size == 1000
    assert on.retention_interval_seconds == 60
    custom = render(
        set_values={
            "retention.maxAgeSeconds": "3600",
            "retention.batchSize": "50",
            "retention.intervalSeconds": "5",
        }
    )
    settings = load_settings(_env_values(_worker_container(custom), tmp_path / "tokens"))
    assert (settings.retention_max_age_seconds, settings.retention_batch_size) == (3600, 50)
    assert settings.retention_interval_seconds == 5
    off = render(set_values={"retention.enabled": "false"})
    assert (
        load_settings(
            _env_values(_worker_container(off), tmp_path / "tokens")
        ).retention_max_age_seconds
        == 0
    )
