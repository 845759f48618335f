"""The reproduced controller against hand-computed autoscaling/v2 outcomes (no processes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml

from tests.autoscale.harness import CHART, DEPLOY_HPA, find_helm, load_hpa_spec
from tests.autoscale.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    HpaController,
    HpaSpec,
    Policy,
    ScalingRules,
    milli,
    spec_from_manifest,
)


def deploy_spec(**changes: Any) -> HpaSpec:
    return replace(spec_from_manifest(yaml.safe_load(DEPLOY_HPA.read_text()), "test"), **changes)


def values(*n: float) -> list[int]:
    return [int(v * 1000) for v in n]


def test_deploy_hpa_is_the_contract() -> None:
    spec = deploy_spec()
    assert spec.metric_name == "queue_worker_queue_backlog"
    assert spec.selector == {"queue": "workflow-queue"}
    assert spec.target_milli == 10_000  # WORKER_CONCURRENCY's default
    assert (spec.min_replicas, spec.max_replicas) == (1, 10)
    assert spec.scale_up.stabilization_sec == 0
    assert spec.scale_down.stabilization_sec == 300
    assert Policy("Pods", 4, 15) in spec.scale_up.policies
    assert Policy("Percent", 100, 15) in spec.scale_up.policies


def test_chart_or_deploy_hpa_feeds_the_target_from_worker_concurrency() -> None:
    """With the chart and helm: worker.concurrency is the HPA target and WORKER_CONCURRENCY."""
    spec, docs = load_hpa_spec({"worker.concurrency": "7"})
    assert spec.metric_name == "queue_worker_queue_backlog", spec.source
    assert spec.selector == {"queue": "workflow-queue"}, spec.source
    if not docs:
        assert not CHART.is_dir() or find_helm() is None
        assert spec.target_milli == 10_000
        return
    assert spec.target_milli == 7_000, spec.source
    envs = [
        env
        for d in docs
        if d.get("kind") == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        for env in c.get("env", [])
        if env.get("name") == "WORKER_CONCURRENCY"
    ]
    assert envs, "no container sets WORKER_CONCURRENCY"
    assert all(env.get("value") == "7" for env in envs), envs


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("10", 10_000),
        ("500m", 500),
        ("1.5", 1500),
        (7, 7000),
        ("2k", 2_000_000),
        ("1Ki", 1_024_000),
    ],
)
def test_quantities(quantity: str | int, expected: int) -> None:
    assert milli(quantity) == expected


def test_missing_behavior_takes_the_api_defaults() -> None:
    obj = yaml.safe_load(DEPLOY_HPA.read_text())
    del obj["spec"]["behavior"]
    del obj["spec"]["minReplicas"]
    spec = spec_from_manifest(obj, "test")
    assert spec.min_replicas == 1
    assert spec.scale_up == DEFAULT_SCALE_UP
    assert spec.scale_down == DEFAULT_SCALE_DOWN


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (40, 4),  # ratio 1.0
        (42, 4),  # 1.05: within the 10% tolerance
        (44, 4),  # 1.10: the boundary is still within
        (45, 5),  # 1.125: ceil(45 / 10)
        (36, 4),  # 0.90: within
        (35, 4),  # 0.875: outside, but ceil(35 / 10) is 4 anyway
        (31, 4),
        (30, 3),  # 0.75: ceil(3.0)
        (0.5, 1),  # min clamp
        (1000, 8),  # from 4 replicas +4 pods and +100% both allow 8 per 15 s
    ],
)
def test_tolerance_ceil_and_limits_from_four_replicas(metric: float, expected: int) -> None:
    controller = HpaController(deploy_spec())
    assert controller.reconcile(0.0, 4, values(metric)).desired == expected


def test_series_are_summed_in_milli_units() -> None:
    controller = HpaController(deploy_spec())
    # Two series of 12.5 = 25 over target 10 from 2 replicas: ratio 1.25, ceil(2.5) = 3.
    assert controller.reconcile(0.0, 2, values(12.5, 12.5)).desired == 3


def test_scale_up_rate_limits_and_max_clamp() -> None:
    controller = HpaController(deploy_spec())
    first = controller.reconcile(0.0, 1, values(300))
    assert (first.raw, first.desired, first.reason) == (30, 5, "ScaleUpLimit")  # 1 + 4 pods
    # Within the same 15 s period the 4 pods already added count against the policy.
    same_period = controller.reconcile(5.0, 5, values(300))
    assert same_period.desired == 5
    # Next period: max(5 + 4, 5 * 2) = 10, which is also maxReplicas.
    later = controller.reconcile(16.0, 5, values(300))
    assert (later.desired, later.reason) == (10, "TooManyReplicas")


def test_select_policy_min_and_disabled() -> None:
    up_min = ScalingRules(0, "Min", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
    controller = HpaController(deploy_spec(scale_up=up_min))
    assert controller.reconcile(0.0, 1, values(300)).desired == 2  # min(1 + 4, 1 * 2)
    disabled = ScalingRules(0, "Disabled", (Policy("Pods", 4, 15),))
    controller = HpaController(deploy_spec(scale_up=disabled))
    assert controller.reconcile(0.0, 3, values(300)).desired == 3


def test_scale_down_waits_for_the_stabilization_window() -> None:
    controller = HpaController(deploy_spec())
    assert controller.reconcile(0.0, 5, values(50)).desired == 5
    # The backlog is gone: each sync recommends 1, but the 300 s window still holds the 5.
    for t in range(15, 300, 15):
        assert controller.reconcile(float(t), 5, values(0)).desired == 5, t
    # At 300 s the sample from t=0 is exactly on the cutoff (not after it): the window holds only
    # recommendations of 0, and minReplicas turns that into 1.
    step = controller.reconcile(300.0, 5, values(0))
    assert (step.raw, step.desired, step.reason) == (0, 1, "TooFewReplicas")


def test_scale_down_percent_policy_truncates() -> None:
    down = ScalingRules(0, "Max", (Policy("Percent", 50, 60),))
    controller = HpaController(deploy_spec(scale_down=down))
    first = controller.reconcile(0.0, 7, values(0))
    assert (first.desired, first.reason) == (3, "ScaleDownLimit")  # int(7 * 0.5) = 3
    # 4 removed within the last 60 s: the period started at 7 again, so no further step yet.
    assert controller.reconcile(30.0, 3, values(0)).desired == 3
    assert controller.reconcile(61.0, 3, values(0)).desired == 1


def test_out_of_range_and_missing_metrics() -> None:
    controller = HpaController(deploy_spec())
    assert controller.reconcile(0.0, 12, values(0)).desired == 10  # above max: max
    assert controller.reconcile(1.0, 0, values(50)).desired == 0  # scaled to 0 by hand: off
    unchanged = controller.reconcile(2.0, 3, None)
    assert (unchanged.desired, unchanged.reason) == (3, "FailedGetExternalMetric")


def test_scaled_spec_compresses_every_window_and_period() -> None:
    spec = deploy_spec().scaled(1 / 15)
    assert spec.scale_down.stabilization_sec == pytest.approx(20.0)
    assert all(p.period_sec == pytest.approx(1.0) for p in spec.scale_up.policies)
