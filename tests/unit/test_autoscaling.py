"""The HPA's decision with exact numbers, as kube-controller-manager computes it.

Each case is worked by hand from the upstream algorithm (replica_calculator.go and
horizontal.go); the comment beside it shows the arithmetic.
"""

from __future__ import annotations

import pytest

from chaoslab.autoscaling import (
    CpuSettings,
    History,
    PodCpu,
    cpu_replicas,
    decide,
    effective_rules,
    scale_down_limit,
    scale_up_limit,
)
from chaoslab.spec import AutoscalingSpec

NOW = 1000.0
# Pods that started long ago (past the 5 m CPU initialization period) and are ready.
OLD = NOW - 600.0


def ready_pod(name: str, usage: float | None, request: float = 0.1) -> PodCpu:
    return PodCpu(name, "Running", False, True, OLD, OLD + 5, request, usage, None if usage is None else NOW, 15.0)


def spec(**fields: object) -> AutoscalingSpec:
    return AutoscalingSpec.model_validate({"maxReplicas": 20, **fields})


def test_ratio_of_total_usage_to_total_request_times_ready_pods() -> None:
    # (150m + 250m) * 100 / (100m + 100m) = 200 %; 200 / 50 = 4; ceil(4 * 2) = 8.
    result = cpu_replicas(2, [ready_pod("a", 0.15), ready_pod("b", 0.25)], 50, NOW)
    assert (result.replicas, result.utilization, result.ratio) == (8, 200, 4.0)


def test_within_the_tolerance_nothing_changes() -> None:
    # 54 % of a 50 % target: ratio 1.08, |1 - 1.08| <= 0.1 -> stay at 2.
    result = cpu_replicas(2, [ready_pod("a", 0.054), ready_pod("b", 0.054)], 50, NOW)
    assert (result.replicas, result.utilization) == (2, 54)
    # A wider tolerance (the controller flag) keeps a bigger deviation too.
    assert cpu_replicas(2, [ready_pod("a", 0.07), ready_pod("b", 0.07)], 50, NOW, CpuSettings(tolerance=0.5)).replicas == 2


def test_utilisation_is_whole_percent_before_the_ratio() -> None:
    # 333m / 300m = 111 % (integer division), ratio 1.11 > 1.1: ceil(1.11 * 3) = 4.
    result = cpu_replicas(3, [ready_pod("a", 0.1), ready_pod("b", 0.1), ready_pod("c", 0.133)], 100, NOW)
    assert (result.replicas, result.utilization) == (4, 111)


def test_unready_pods_count_as_idle_on_a_scale_up() -> None:
    # One ready pod at 300 % of a 100 % target (ratio 3) and two pending pods: they count
    # as 0, so (300 + 0 + 0) / 300 = 100 %, within the tolerance: stay at 3.
    pending = [PodCpu(n, "Pending", False, False, None, None, 0.1) for n in ("p", "q")]
    result = cpu_replicas(3, [ready_pod("a", 0.3), *pending], 100, NOW)
    assert (result.replicas, result.utilization, result.unready) == (3, 300, 2)


def test_missing_metrics_count_as_full_on_a_scale_down() -> None:
    # Two pods at 20 % of a 50 % target (ratio 0.4) would give ceil(0.4 * 2) = 1; the pod
    # without a metric counts as 100 %: (20 + 20 + 100) / 3 = 46 %, ratio 0.92: stay at 3.
    result = cpu_replicas(3, [ready_pod("a", 0.02), ready_pod("b", 0.02), ready_pod("c", None)], 50, NOW)
    assert (result.replicas, result.utilization, result.missing) == (3, 20, 1)


def test_missing_metrics_count_as_zero_on_a_scale_up() -> None:
    # One pod at 400 % of 100 % and one without a metric (0): 400 / 200 = 200 %, ceil(2 * 2) = 4.
    result = cpu_replicas(2, [ready_pod("a", 0.4), ready_pod("b", None)], 100, NOW)
    assert result.replicas == 4


def test_a_just_started_pod_is_set_aside_until_a_whole_window_after_it_became_ready() -> None:
    # Started 20 s ago (inside the 5 m initialization period), Ready 5 s ago; its metric
    # window (15 s) ends now, so it began before the pod was ready: the sample is unready.
    young = PodCpu("young", "Running", False, True, NOW - 20, NOW - 5, 0.1, 0.5, NOW, 15.0)
    result = cpu_replicas(2, [ready_pod("a", 0.1), young], 50, NOW)
    assert (result.unready, result.utilization) == (1, 100)
    # ratio 2 with an unready pod: counted as 0, (100 + 0) / 200 = 50 %, ratio 1.0: stay at 2.
    assert result.replicas == 2
    # Ready 16 s ago: a whole window since; its 500 % counts: (100 + 500) / 200 = 300 %, ceil(6 * 2) = 12.
    settled = PodCpu("young", "Running", False, True, NOW - 20, NOW - 16, 0.1, 0.5, NOW, 15.0)
    assert cpu_replicas(2, [ready_pod("a", 0.1), settled], 50, NOW).replicas == 12


def test_no_metric_at_all_gives_no_recommendation() -> None:
    result = cpu_replicas(2, [ready_pod("a", None), ready_pod("b", None)], 50, NOW)
    assert result.replicas is None and result.missing == 2


def test_default_scale_up_is_the_larger_of_four_pods_and_double_per_15_seconds() -> None:
    autoscaling = spec()
    up, down = effective_rules(autoscaling, 300.0)
    # From 1: max(1 + 4, ceil(1 * 2)) = 5.
    first = decide(1, 10, autoscaling, up, down, History(), NOW)
    assert (first.desired, first.reason) == (5, "ScaleUpLimit")
    # 10 s later the period still counts the +4: it started at 5 - 4 = 1, so the limit is 5.
    held = decide(5, 10, autoscaling, up, down, first.history, NOW + 10)
    assert held.desired == 5
    # 15 s later the period is new: max(5 + 4, ceil(5 * 2)) = 10.
    second = decide(5, 16, autoscaling, up, down, first.history, NOW + 15)
    assert second.desired == 10
    assert scale_up_limit(10, second.history, up, NOW + 30) == 20


def test_scale_down_waits_for_the_highest_recommendation_of_the_window() -> None:
    autoscaling = spec(minReplicas=1)
    up, down = effective_rules(autoscaling, 300.0)
    assert down.stabilization_seconds == 300.0
    history = History()
    at_8 = decide(8, 8, autoscaling, up, down, history, NOW)
    assert at_8.desired == 8
    low = decide(8, 2, autoscaling, up, down, at_8.history, NOW + 15)
    assert (low.desired, low.stabilized, low.reason) == (8, 8, "ScaleDownStabilized")
    # 299 s after the 8 it still holds; once it is older than the window, down to 2
    # (100 % per 15 s allows it all at once).
    history = low.history
    for t in range(30, 300, 15):
        step = decide(8, 2, autoscaling, up, down, history, NOW + t)
        assert step.desired == 8, t
        history = step.history
    after = decide(8, 2, autoscaling, up, down, history, NOW + 300)
    assert after.desired == 2


def test_a_pods_policy_and_a_shorter_window_limit_the_scale_down() -> None:
    autoscaling = spec(
        behavior={"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    )
    up, down = effective_rules(autoscaling, 300.0)
    first = decide(5, 1, autoscaling, up, down, History(), NOW)
    assert (first.desired, first.reason) == (4, "ScaleDownLimit")
    assert decide(4, 1, autoscaling, up, down, first.history, NOW + 30).desired == 4
    assert decide(4, 1, autoscaling, up, down, first.history, NOW + 60).desired == 3
    assert scale_down_limit(4, first.history, down, NOW + 30) == 4


def test_min_and_max_replicas_bound_the_count() -> None:
    autoscaling = spec(minReplicas=2, maxReplicas=6)
    up, down = effective_rules(autoscaling, 300.0)
    assert decide(9, 9, autoscaling, up, down, History(), NOW).desired == 6
    assert decide(1, 1, autoscaling, up, down, History(), NOW).desired == 2
    # From 5 the policies would allow 10: maxReplicas wins.
    capped = decide(5, 12, autoscaling, up, down, History(), NOW)
    assert (capped.desired, capped.reason) == (6, "TooManyReplicas")


@pytest.mark.parametrize("select, expected", [("Max", 5), ("Min", 2), ("Disabled", 1)])
def test_select_policy_picks_among_the_policies(select: str, expected: int) -> None:
    autoscaling = spec(behavior={"scaleUp": {"selectPolicy": select}})
    up, down = effective_rules(autoscaling, 300.0)
    # Pods: 1 + 4 = 5; Percent: ceil(1 * 2) = 2.
    assert decide(1, 10, autoscaling, up, down, History(), NOW).desired == expected


def test_autoscaling_v2_defaults_fill_what_the_spec_leaves_out() -> None:
    autoscaling = AutoscalingSpec.model_validate({"maxReplicas": 5})
    assert (autoscaling.min_replicas, autoscaling.target_utilization) == (1, 80)
    up, down = effective_rules(autoscaling, downscale_stabilization=300.0)
    assert up.stabilization_seconds == 0 and up.select_policy == "Max"
    assert [(p.type, p.value, p.period_seconds) for p in up.policies] == [("Pods", 4, 15), ("Percent", 100, 15)]
    assert down.stabilization_seconds == 300.0 and down.select_policy == "Max"
    assert [(p.type, p.value, p.period_seconds) for p in down.policies] == [("Percent", 100, 15)]
    # A per-HPA window wins over the controller flag; the flag applies only when unset.
    own = AutoscalingSpec.model_validate({"maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}})
    assert effective_rules(own, 300.0)[1].stabilization_seconds == 30.0
    assert effective_rules(autoscaling, 12.0)[1].stabilization_seconds == 12.0


@pytest.mark.parametrize("text, cores", [("250m", 0.25), ("1", 1.0), ("0.5", 0.5), (2, 2.0), ("1500m", 1.5)])
def test_cpu_quantities(text: object, cores: float) -> None:
    from chaoslab.units import parse_cpu

    assert parse_cpu(text) == cores


@pytest.mark.parametrize("text", ["half", "0", "-1", "1Gi", True, ""])
def test_cpu_quantities_that_are_not(text: object) -> None:
    from chaoslab.units import parse_cpu

    with pytest.raises(ValueError, match="expected a CPU quantity"):
        parse_cpu(text)
