"""The HorizontalPodAutoscaler controller's arithmetic for one External AverageValue metric.

A line-by-line transcription of kube-controller-manager's podautoscaler (autoscaling/v2), not a
cluster: pkg/controller/podautoscaler/horizontal.go (reconcileAutoscaler,
normalizeDesiredReplicasWithBehaviors, stabilizeRecommendationWithBehaviors,
convertDesiredReplicasWithBehaviorRate, calculateScaleUp/DownLimitWithScalingRules,
storeScaleEvent) and replica_calculator.go (GetExternalPerPodMetricReplicas):

    usage      = sum of the metric's values (milli-units) over the series the selector matches
    usageRatio = usage / (target * currentReplicas)
    desired    = ceil(usage / target) unless 1 - tolerance <= usageRatio <= 1 + tolerance
    then: stabilization (scale-up: min of the window's recommendations; scale-down: max), rate
    policies (Pods / Percent per period, selectPolicy Max/Min/Disabled) and min/max clamps.

Times are explicit arguments (seconds on any monotonic clock), so tests drive it
deterministically. `HpaSpec.scaled(f)` multiplies every window and period by f, which is how the
live test compresses five minutes of scale-down stabilization into seconds; docs/metrics.md
states the real values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

SelectPolicy = Literal["Max", "Min", "Disabled"]
DEFAULT_TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
DEFAULT_SYNC_PERIOD_SEC = 15.0  # --horizontal-pod-autoscaler-sync-period


@dataclass(frozen=True)
class Policy:
    type: Literal["Pods", "Percent"]
    value: int
    period_sec: float


@dataclass(frozen=True)
class ScalingRules:
    stabilization_sec: float
    select_policy: SelectPolicy
    policies: tuple[Policy, ...]
    tolerance: float = DEFAULT_TOLERANCE


# The API server's defaults for a missing behavior (GenerateHPAScaleUp/DownRules).
DEFAULT_SCALE_UP = ScalingRules(
    0, "Max", (Policy("Pods", 4, 15), Policy("Percent", 100, 15)), DEFAULT_TOLERANCE
)
DEFAULT_SCALE_DOWN = ScalingRules(300, "Max", (Policy("Percent", 100, 15),), DEFAULT_TOLERANCE)


@dataclass(frozen=True)
class HpaSpec:
    name: str
    min_replicas: int
    max_replicas: int
    metric_name: str
    selector: dict[str, str]
    target_milli: int  # target.averageValue as a milli-quantity
    scale_up: ScalingRules
    scale_down: ScalingRules
    source: str = ""

    def scaled(self, factor: float) -> HpaSpec:
        """The same spec with every stabilization window and policy period times `factor`."""

        def rules(r: ScalingRules) -> ScalingRules:
            return replace(
                r,
                stabilization_sec=r.stabilization_sec * factor,
                policies=tuple(replace(p, period_sec=p.period_sec * factor) for p in r.policies),
            )

        return replace(self, scale_up=rules(self.scale_up), scale_down=rules(self.scale_down))


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|Ki|Mi|Gi)?$")
_SUFFIX = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024.0, "Mi": 1024.0**2}
_SUFFIX["Gi"] = 1024.0**3


def milli(quantity: str | int | float) -> int:
    """A Kubernetes quantity as MilliValue() (rounded up, as resource.Quantity does)."""
    m = _QUANTITY.match(str(quantity).strip())
    if not m:
        raise ValueError(f"not a quantity: {quantity!r}")
    return math.ceil(float(m.group(1)) * _SUFFIX[m.group(2)] * 1000 - 1e-9)


def _rules(raw: dict[str, Any] | None, default: ScalingRules) -> ScalingRules:
    if raw is None:
        return default
    policies = raw.get("policies")
    return ScalingRules(
        stabilization_sec=float(raw.get("stabilizationWindowSeconds", default.stabilization_sec)),
        select_policy=raw.get("selectPolicy", "Max"),
        policies=(
            tuple(Policy(p["type"], int(p["value"]), float(p["periodSeconds"])) for p in policies)
            if policies
            else default.policies
        ),
        tolerance=float(raw.get("tolerance", default.tolerance)),
    )


def spec_from_manifest(obj: dict[str, Any], source: str) -> HpaSpec:
    """An autoscaling/v2 HorizontalPodAutoscaler with one External AverageValue metric."""
    assert obj["apiVersion"] == "autoscaling/v2", obj["apiVersion"]
    assert obj["kind"] == "HorizontalPodAutoscaler", obj["kind"]
    spec = obj["spec"]
    externals = [m for m in spec["metrics"] if m["type"] == "External"]
    assert len(externals) == 1, f"expected one External metric, got {spec['metrics']}"
    ext = externals[0]["external"]
    assert ext["target"]["type"] == "AverageValue", ext["target"]
    behavior = spec.get("behavior") or {}
    return HpaSpec(
        name=obj["metadata"]["name"],
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
        metric_name=ext["metric"]["name"],
        selector=dict(ext["metric"].get("selector", {}).get("matchLabels", {})),
        target_milli=milli(ext["target"]["averageValue"]),
        scale_up=_rules(behavior.get("scaleUp"), DEFAULT_SCALE_UP),
        scale_down=_rules(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN),
        source=source,
    )


def external_per_pod_replicas(
    status_replicas: int,
    target_milli: int,
    values_milli: list[int],
    rules_up: ScalingRules,
    rules_down: ScalingRules,
) -> int:
    """replica_calculator.go GetExternalPerPodMetricReplicas (with per-direction tolerances)."""
    usage = sum(values_milli)
    if status_replicas == 0:
        # Scale from zero (only with the HPAScaleToZero gate): no ratio to compare.
        return math.ceil(usage / target_milli)
    ratio = usage / (target_milli * status_replicas)
    if (1.0 - rules_down.tolerance) <= ratio <= (1.0 + rules_up.tolerance):
        return status_replicas
    return math.ceil(usage / target_milli)


@dataclass
class Decision:
    at: float
    metric_milli: int | None
    current: int
    raw: int  # what the metric asks for, before stabilization and limits
    desired: int
    reason: str


@dataclass
class _Event:
    at: float
    change: int


@dataclass
class HpaController:
    spec: HpaSpec
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[_Event] = field(default_factory=list)
    down_events: list[_Event] = field(default_factory=list)

    def reconcile(self, now: float, current: int, values_milli: list[int] | None) -> Decision:
        """One sync: the replica count the controller sets (== current: no change)."""
        spec = self.spec
        metric = None if values_milli is None else sum(values_milli)
        if current == 0 and spec.min_replicas != 0:
            return Decision(now, metric, current, 0, current, "ScalingDisabled")
        if current > spec.max_replicas:
            desired, raw, reason = spec.max_replicas, spec.max_replicas, "TooManyReplicas"
        elif current < spec.min_replicas:
            desired, raw, reason = spec.min_replicas, spec.min_replicas, "TooFewReplicas"
        elif values_milli is None or not values_milli:
            # computeReplicasForMetrics failed (no data): ScalingActive=False, no change.
            return Decision(now, metric, current, current, current, "FailedGetExternalMetric")
        else:
            raw = external_per_pod_replicas(
                current, spec.target_milli, values_milli, spec.scale_up, spec.scale_down
            )
            stabilized = self._stabilize(now, current, raw)
            desired, reason = self._rate_limit(now, current, stabilized)
        if desired != current:
            self._store_event(now, current, desired)
        return Decision(now, metric, current, raw, desired, reason)

    def _stabilize(self, now: float, current: int, raw: int) -> int:
        up_cutoff = now - self.spec.scale_up.stabilization_sec
        down_cutoff = now - self.spec.scale_down.stabilization_sec
        up_rec, down_rec = raw, raw
        old_index = None
        for i, (at, rec) in enumerate(self.recommendations):
            if at > up_cutoff:
                up_rec = min(rec, up_rec)
            if at > down_cutoff:
                down_rec = max(rec, down_rec)
            if at < up_cutoff and at < down_cutoff:
                old_index = i
        recommendation = current
        if recommendation < up_rec:
            recommendation = up_rec
        if recommendation > down_rec:
            recommendation = down_rec
        if old_index is not None:
            self.recommendations[old_index] = (now, raw)
        else:
            self.recommendations.append((now, raw))
        return recommendation

    @staticmethod
    def _changed_in(events: list[_Event], period: float, now: float) -> int:
        return sum(e.change for e in events if e.at > now - period)

    def _limit(self, current: int, rules: ScalingRules, now: float, up: bool) -> int:
        if rules.select_policy == "Disabled":
            return current
        pick_min = (rules.select_policy == "Min") == up
        result: int | None = None
        for p in rules.policies:
            added = self._changed_in(self.up_events, p.period_sec, now)
            deleted = self._changed_in(self.down_events, p.period_sec, now)
            start = current - added + deleted
            if up:
                proposed = (
                    start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100))
                )
            else:
                proposed = start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100))
            if result is None:
                result = proposed
            else:
                result = min(result, proposed) if pick_min else max(result, proposed)
        return current if result is None else result

    def _rate_limit(self, now: float, current: int, desired: int) -> tuple[int, str]:
        spec = self.spec
        if desired > current:
            limit = max(self._limit(current, spec.scale_up, now, up=True), current)
            if spec.max_replicas > limit:
                allowed, reason = limit, "ScaleUpLimit"
            else:
                allowed, reason = spec.max_replicas, "TooManyReplicas"
            if desired > allowed:
                return allowed, reason
        elif desired < current:
            limit = min(self._limit(current, spec.scale_down, now, up=False), current)
            if spec.min_replicas < limit:
                allowed, reason = limit, "ScaleDownLimit"
            else:
                allowed, reason = spec.min_replicas, "TooFewReplicas"
            if desired < allowed:
                return allowed, reason
        return desired, "DesiredWithinRange"

    def _store_event(self, now: float, previous: int, new: int) -> None:
        if new > previous:
            self.up_events.append(_Event(now, new - previous))
        else:
            self.down_events.append(_Event(now, previous - new))
