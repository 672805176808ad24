"""The HorizontalPodAutoscaler's decision, as pure functions: what it would do, and why.

Why it exists apart from the simulated controller: the same arithmetic drives the sim's
HPA (cluster/sim/hpa.py) and the report's "expected" line (what the algorithm predicts
from the utilisation that was measured), and it must be testable with exact numbers.
It follows kube-controller-manager's pkg/controller/podautoscaler:

- replica_calculator.go GetResourceReplicas: pods are grouped (groupPods) into ready,
  unready (Pending; or, for CPU, not Ready / just started, see `_unready`), missing (no
  metric) and ignored (deleting or failed). Utilisation = sum(usage) * 100 / sum(requests)
  in whole percent (integer division, as upstream's int64 millicores), ratio = it / target.
  With no unready pod to worry about and no missing metric: within the tolerance (0.1)
  nothing changes, else ceil(ratio * ready pods). Otherwise missing pods count as 100 %
  of their request (at least the target) on a scale-down and 0 on a scale-up, unready
  pods as 0 on a scale-up; the ratio is recomputed, and a result that would reverse the
  direction, or sit within the tolerance, keeps the current count.
- horizontal.go normalizeDesiredReplicasWithBehaviors: the recommendation is stabilized
  (the highest of the scale-down window's recommendations, the lowest of the scale-up
  window's), then limited by the scaling policies over their periods (the Max or Min of
  the policies, counted from the replicas at the start of each period), and by
  minReplicas / maxReplicas.

Times are seconds on one clock of the caller's choice; CPU in cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chaoslab.spec import (
    DEFAULT_SCALE_DOWN_POLICIES,
    DEFAULT_SCALE_UP_POLICIES,
    DEFAULT_SCALE_UP_STABILIZATION_SECONDS,
    AutoscalingSpec,
    ScalingPolicy,
    ScalingRules,
)


@dataclass(frozen=True)
class PodCpu:
    """One pod of the target as the HPA sees it.

    phase: Pending | Running | Failed. deleting: has a deletion timestamp. ready: the
    Ready condition (None: no condition yet). start_time: status.startTime (None: not
    started). ready_transition: the Ready condition's lastTransitionTime. usage: CPU in
    cores from the resource metrics API (None: no metric), measured over `window` s and
    stamped `metric_ts` (the end of the window). request: the pod's CPU request in cores.
    """

    name: str
    phase: str
    deleting: bool
    ready: bool | None
    start_time: float | None
    ready_transition: float | None
    request: float
    usage: float | None = None
    metric_ts: float | None = None
    window: float = 0.0


@dataclass(frozen=True)
class CpuSettings:
    """The controller flags that shape the CPU calculation (defaults upstream's)."""

    # --horizontal-pod-autoscaler-tolerance default 0.1.
    tolerance: float = 0.1
    # --horizontal-pod-autoscaler-cpu-initialization-period default 5 m.
    cpu_initialization_period: float = 300.0
    # --horizontal-pod-autoscaler-initial-readiness-delay default 30 s.
    initial_readiness_delay: float = 30.0


@dataclass(frozen=True)
class CpuRecommendation:
    """What the metric asks for. replicas None: no metric at all (the HPA does not act).

    utilization: average utilisation (whole percent) of the pods with a usable metric, the
    number `kubectl get hpa` shows; ratio: utilization / target. ready, unready, missing,
    ignored: how many pods fell in each group.
    """

    replicas: int | None
    utilization: int | None
    ratio: float | None
    ready: int
    unready: int
    missing: int
    ignored: int


def _millicores(cores: float) -> int:
    # resource.Quantity.MilliValue() rounds up; a little slack for float noise.
    return math.ceil(cores * 1000.0 - 1e-6)


def _utilization(usages: dict[str, float], requests: dict[str, float], target: int) -> tuple[int, float] | None:
    """(utilisation %, ratio to target) over the pods in `usages` (GetResourceUtilizationRatio)."""
    used = sum(_millicores(usages[name]) for name in usages)
    requested = sum(_millicores(requests[name]) for name in usages)
    if requested <= 0:
        return None
    utilization = used * 100 // requested
    return utilization, utilization / target


def _unready(pod: PodCpu, now: float, settings: CpuSettings) -> bool:
    """Whether a running pod's CPU sample is set aside (groupPods, resource CPU)."""
    if pod.ready is None or pod.start_time is None or pod.ready_transition is None:
        return True
    if pod.start_time + settings.cpu_initialization_period > now:
        # Just started: ignore the sample if the pod is unready, or if one whole metric
        # window has not passed since its readiness last changed.
        assert pod.metric_ts is not None
        return (not pod.ready) or pod.metric_ts < pod.ready_transition + pod.window
    # Later: ignore it only if the pod is unready and has never been ready.
    return (not pod.ready) and pod.start_time + settings.initial_readiness_delay > pod.ready_transition


def cpu_replicas(
    current: int, pods: Sequence[PodCpu], target_utilization: int, now: float, settings: CpuSettings = CpuSettings()
) -> CpuRecommendation:
    """The replica count the CPU metric asks for (upstream GetResourceReplicas)."""
    ready, unready, missing, ignored = [], [], [], []
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.append(pod)
        elif pod.phase == "Pending":
            unready.append(pod)
        elif pod.usage is None:
            missing.append(pod)
        elif _unready(pod, now, settings):
            unready.append(pod)
        else:
            ready.append(pod)
    counts = {"ready": len(ready), "unready": len(unready), "missing": len(missing), "ignored": len(ignored)}
    if not ready:
        # Upstream: "did not receive metrics for targeted pods" (no usable sample at all).
        return CpuRecommendation(None, None, None, **counts)
    requests = {pod.name: pod.request for pod in pods}
    usages = {pod.name: float(pod.usage) for pod in ready if pod.usage is not None}
    measured = _utilization(usages, requests, target_utilization)
    if measured is None:
        return CpuRecommendation(None, None, None, **counts)
    utilization, ratio = measured
    tolerance = settings.tolerance
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return CpuRecommendation(current, utilization, ratio, **counts)
        return CpuRecommendation(math.ceil(ratio * len(ready)), utilization, ratio, **counts)
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization) / 100.0
            usages.update({pod.name: pod.request * fallback for pod in missing})
        elif ratio > 1.0:
            usages.update({pod.name: 0.0 for pod in missing})
    if scale_up_with_unready:
        usages.update({pod.name: 0.0 for pod in unready})
    remeasured = _utilization(usages, requests, target_utilization)
    assert remeasured is not None
    new_ratio = remeasured[1]
    if (
        abs(1.0 - new_ratio) <= tolerance
        or (ratio < 1.0 and new_ratio > 1.0)
        or (ratio > 1.0 and new_ratio < 1.0)
    ):
        return CpuRecommendation(current, utilization, ratio, **counts)
    replicas = math.ceil(new_ratio * len(usages))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        replicas = current
    return CpuRecommendation(replicas, utilization, ratio, **counts)


# --- behavior: stabilization and scaling policies ---------------------------------------


@dataclass(frozen=True)
class Rules:
    """Scaling rules of one direction with the defaults filled in."""

    stabilization_seconds: float
    select_policy: str
    policies: tuple[ScalingPolicy, ...]


def effective_rules(spec: AutoscalingSpec, downscale_stabilization: float) -> tuple[Rules, Rules]:
    """(scale-up, scale-down) rules: the spec's, with autoscaling/v2 defaults where unset.

    `downscale_stabilization` is the controller's --horizontal-pod-autoscaler-downscale-
    stabilization (5 m), used when scaleDown.stabilizationWindowSeconds is unset.
    """

    def filled(rules: ScalingRules, window: float, policies: tuple[ScalingPolicy, ...]) -> Rules:
        return Rules(
            stabilization_seconds=float(rules.stabilization_window_seconds) if rules.stabilization_window_seconds is not None else window,
            select_policy=rules.select_policy,
            policies=tuple(rules.policies) if rules.policies else policies,
        )

    behavior = spec.behavior
    return (
        filled(behavior.scale_up, float(DEFAULT_SCALE_UP_STABILIZATION_SECONDS), DEFAULT_SCALE_UP_POLICIES),
        filled(behavior.scale_down, downscale_stabilization, DEFAULT_SCALE_DOWN_POLICIES),
    )


@dataclass(frozen=True)
class History:
    """What the controller remembers of one HPA: recommendations and scale events (ts, n)."""

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_ups: tuple[tuple[float, int], ...] = ()
    scale_downs: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class Decision:
    """One HPA evaluation. desired: the replicas it sets; stabilized: the recommendation
    after the stabilization windows, before the policies; reason: what limited it."""

    desired: int
    stabilized: int
    reason: str
    history: History


def _change_in_period(events: tuple[tuple[float, int], ...], period: float, now: float) -> int:
    """Replicas added (or removed) by events within the last `period` s (getReplicasChangePerPeriod)."""
    return sum(change for ts, change in events if ts > now - period)


def _replicas_at_period_start(current: int, history: History, period: float, now: float) -> int:
    """The replica count `period` s ago, as both policy limits start from it: the current
    count less what scale-ups added and plus what scale-downs removed since."""
    return current - _change_in_period(history.scale_ups, period, now) + _change_in_period(history.scale_downs, period, now)


def scale_up_limit(current: int, history: History, rules: Rules, now: float) -> int:
    """Most replicas the scale-up policies allow now (calculateScaleUpLimitWithScalingRules)."""
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = _replicas_at_period_start(current, history, policy.period_seconds, now)
        if policy.type == "Pods":
            proposals.append(start + policy.value)
        else:
            proposals.append(math.ceil(start * (1 + policy.value / 100.0)))
    return min(proposals) if rules.select_policy == "Min" else max(proposals)


def scale_down_limit(current: int, history: History, rules: Rules, now: float) -> int:
    """Fewest replicas the scale-down policies allow now (calculateScaleDownLimitWithBehaviors)."""
    if rules.select_policy == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = _replicas_at_period_start(current, history, policy.period_seconds, now)
        if policy.type == "Pods":
            proposals.append(start - policy.value)
        else:
            proposals.append(int(start * (1 - policy.value / 100.0)))
    # Min picks the policy that changes least: the highest floor.
    return max(proposals) if rules.select_policy == "Min" else min(proposals)


def decide(
    current: int,
    recommendation: int,
    spec: AutoscalingSpec,
    up: Rules,
    down: Rules,
    history: History,
    now: float,
) -> Decision:
    """The replicas one evaluation sets, given the metric's recommendation (reconcileAutoscaler).

    Outside [minReplicas, maxReplicas] the count is brought inside first; otherwise the
    recommendation is stabilized, then rate-limited by the policies. The history comes
    back with this recommendation and, if the count changes, this scale event.
    """
    minimum, maximum = spec.min_replicas, spec.max_replicas
    if not history.recommendations:
        # recordInitialRecommendation: the count found at the first evaluation.
        history = replace(history, recommendations=((now, current),))
    if current > maximum:
        return _rescaled(current, maximum, maximum, "current replicas above maxReplicas", history, now, up, down)
    if current < minimum:
        return _rescaled(current, minimum, minimum, "current replicas below minReplicas", history, now, up, down)
    # stabilizeRecommendationWithBehaviors
    up_cutoff, down_cutoff = now - up.stabilization_seconds, now - down.stabilization_seconds
    up_bound = down_bound = recommendation
    for ts, value in history.recommendations:
        if ts > up_cutoff:
            up_bound = min(up_bound, value)
        if ts > down_cutoff:
            down_bound = max(down_bound, value)
    stabilized = min(max(current, up_bound), down_bound)
    oldest_kept = min(up_cutoff, down_cutoff)
    recommendations = tuple(r for r in history.recommendations if r[0] > oldest_kept) + ((now, recommendation),)
    history = replace(history, recommendations=recommendations)
    reason = "ScaleDownStabilized" if stabilized > recommendation else "ScaleUpStabilized" if stabilized < recommendation else "DesiredWithinRange"
    # convertDesiredReplicasWithBehaviorRate
    desired = stabilized
    if stabilized > current:
        limit = max(scale_up_limit(current, history, up, now), current)
        if maximum > limit:
            bound, why = limit, "ScaleUpLimit"
        else:
            bound, why = maximum, "TooManyReplicas"
        if stabilized > bound:
            desired, reason = bound, why
    elif stabilized < current:
        limit = min(scale_down_limit(current, history, down, now), current)
        if minimum < limit:
            bound, why = limit, "ScaleDownLimit"
        else:
            bound, why = minimum, "TooFewReplicas"
        if stabilized < bound:
            desired, reason = bound, why
    return _rescaled(current, desired, stabilized, reason, history, now, up, down)


def _rescaled(
    current: int, desired: int, stabilized: int, reason: str, history: History, now: float, up: Rules, down: Rules
) -> Decision:
    """The decision, with the scale event stored (storeScaleEvent) when the count changes."""
    longest = max((p.period_seconds for p in (*up.policies, *down.policies)), default=0)
    keep = now - longest
    ups = tuple(e for e in history.scale_ups if e[0] > keep)
    downs = tuple(e for e in history.scale_downs if e[0] > keep)
    if desired > current:
        ups += ((now, desired - current),)
    elif desired < current:
        downs += ((now, current - desired),)
    return Decision(desired=desired, stabilized=stabilized, reason=reason, history=History(history.recommendations, ups, downs))
