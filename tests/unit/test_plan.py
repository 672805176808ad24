"""The plan: sweep points x trials, seeds, the fault schedule, target counts, warnings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaoslab.plan import (
    Plan,
    build_plan,
    fault_schedule,
    firing_count,
    render_plan,
    resolved_target_count,
    trial_seconds,
    trial_seed,
)
from chaoslab.spec import Experiment
from chaoslab.specload import load_experiment

CANONICAL = Path(__file__).resolve().parents[2] / "experiments" / "web-pod-delete.yaml"
PROBE = {"httpGet": {"path": "/readyz"}, "periodSeconds": 1}


def experiment(**sections: Any) -> Experiment:
    """A valid experiment with a readiness probe, overridden section by section."""
    data: dict[str, Any] = {"name": "plan-test", "workload": {"replicas": 3, "readinessProbe": PROBE}}
    data.update(sections)
    return Experiment.model_validate(data)


# --- sweep, ids, seeds ---------------------------------------------------------------


def test_sweep_is_the_cartesian_product_in_file_order_first_path_outermost() -> None:
    plan = build_plan(experiment(sweep={"workload.replicas": [1, 2], "load.users": [5, 10, 20]}, trials=2))
    assert plan.points == 6
    assert plan.sweep_paths == ("workload.replicas", "load.users")
    first_trials = [t for t in plan.trials if t.trial == 1]
    assert [(t.params["workload.replicas"], t.params["load.users"]) for t in first_trials] == [
        (1, 5),
        (1, 10),
        (1, 20),
        (2, 5),
        (2, 10),
        (2, 20),
    ]
    assert [t.id for t in plan.trials[:4]] == ["p01-t1", "p01-t2", "p02-t1", "p02-t2"]
    assert plan.trials[-1].id == "p06-t2"


def test_each_trial_carries_its_points_resolved_experiment_without_the_sweep() -> None:
    plan = build_plan(experiment(sweep={"workload.replicas": [1, 4], "timeline.duration": ["20s"]}))
    one, four = plan.trials
    assert (one.experiment.workload.replicas, four.experiment.workload.replicas) == (1, 4)
    assert one.experiment.timeline.duration == 20.0
    assert one.experiment.sweep == {} and four.experiment.sweep == {}
    # The plan's own experiment keeps the sweep as written.
    assert plan.experiment.sweep == {"workload.replicas": [1, 4], "timeline.duration": ["20s"]}


def test_without_a_sweep_there_is_one_point_with_no_params() -> None:
    plan = build_plan(experiment(trials=3))
    assert plan.points == 1
    assert [t.id for t in plan.trials] == ["p01-t1", "p01-t2", "p01-t3"]
    assert all(t.params == {} for t in plan.trials)


def test_point_numbers_keep_two_digits_and_grow_past_ninety_nine() -> None:
    plan = build_plan(experiment(sweep={"load.users": list(range(1, 101))}))
    assert plan.trials[9].id == "p10-t1"
    assert plan.trials[99].id == "p100-t1"


def test_seeds_are_deterministic_and_distinct() -> None:
    exp = experiment(sweep={"workload.replicas": [1, 2, 3]}, trials=5, seed=42)
    seeds = [t.seed for t in build_plan(exp).trials]
    assert seeds == [t.seed for t in build_plan(exp).trials]
    assert len(set(seeds)) == len(seeds)
    other = [t.seed for t in build_plan(exp.model_copy(update={"seed": 43})).trials]
    assert not set(seeds) & set(other)


def test_seed_derivation_is_stable_across_python_processes() -> None:
    # Pinned on purpose: results folders record these seeds, and a rerun must reproduce
    # them. hash()-based derivation would change with PYTHONHASHSEED on every run.
    assert trial_seed(42, 1, 1) == 2441597184


# --- fault schedule --------------------------------------------------------------------


def test_every_and_repeat_expand_into_ids_sorted_by_time() -> None:
    exp = experiment(
        timeline={"duration": "40s"},
        faults=[
            {"at": "5s", "action": "pod-delete", "every": "10s"},
            {"at": "12s", "action": "container-kill", "every": "10s", "repeat": 2},
            {"at": "20s", "action": "scale", "replicas": 4},
        ],
    )
    schedule = fault_schedule(exp)
    assert [(s.fault_id, s.at) for s in schedule] == [
        ("f0", 5.0),
        ("f1", 12.0),
        ("f0.1", 15.0),
        ("f2", 20.0),
        ("f1.1", 22.0),
        ("f0.2", 25.0),
        ("f0.3", 35.0),
    ]
    assert [(s.index, s.repeat, s.action) for s in schedule[:3]] == [
        (0, 0, "pod-delete"),
        (1, 0, "container-kill"),
        (0, 1, "pod-delete"),
    ]
    assert schedule[0].fault is exp.faults[0]


def test_a_repeat_landing_exactly_at_the_end_does_not_fire() -> None:
    exp = experiment(
        timeline={"duration": "30s"}, faults=[{"at": "10s", "action": "pod-delete", "every": "10s"}]
    )
    assert [s.at for s in fault_schedule(exp)] == [10.0, 20.0]


def test_firings_at_the_same_time_keep_file_order() -> None:
    exp = experiment(
        faults=[
            {"at": "5s", "action": "scale", "replicas": 5},
            {"at": "5s", "action": "pod-delete", "target": {"count": 5}},
        ]
    )
    assert [s.fault_id for s in fault_schedule(exp)] == ["f0", "f1"]
    # The scale listed first counts for the pod-delete at the same time.
    assert resolved_target_count(exp, exp.faults[1]) == 5


def _brute_force_firings(at: float, every: float | None, repeat: int | None, duration: float) -> int:
    times = []
    k = 0
    while at + k * (every or 0) < duration:
        times.append(at + k * (every or 0))
        k += 1
        if every is None or (repeat is not None and k >= repeat):
            break
    return len(times)


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(
    at=st.floats(min_value=0, max_value=100),
    every=st.none() | st.floats(min_value=0.05, max_value=50),
    repeat=st.none() | st.integers(min_value=1, max_value=20),
    duration=st.floats(min_value=0.5, max_value=200),
)
def test_firing_count_matches_stepping_through_the_schedule(
    at: float, every: float | None, repeat: int | None, duration: float
) -> None:
    fault = Experiment.model_validate(
        {
            "name": "p",
            "timeline": {"duration": 1000},
            "faults": [{"at": at, "action": "pod-delete", "every": every, "repeat": repeat}],
        }
    ).faults[0]
    assert firing_count(fault, duration) == _brute_force_firings(at, every, repeat, duration)


# --- target counts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "target", "expected"),
    [
        (3, {"percent": "50%"}, 2),  # rounds up, like Kubernetes
        (100, {"percent": "7%"}, 7),  # no floating-point overshoot to 8
        (3, {"percent": "1%"}, 1),  # at least one
        (4, {"percent": "100%"}, 4),
        (3, {"count": 2}, 2),
        (3, {"name": "web-abc"}, 1),
    ],
)
def test_pod_target_counts(replicas: int, target: dict[str, Any], expected: int) -> None:
    exp = experiment(
        workload={"replicas": replicas, "readinessProbe": PROBE},
        faults=[{"at": "5s", "action": "pod-delete", "target": target}],
    )
    assert resolved_target_count(exp, exp.faults[0]) == expected


def test_node_percent_counts_nodes_on_sim_and_is_unknown_on_kubernetes() -> None:
    faults = [{"at": "5s", "action": "node-crash", "target": {"percent": "50%"}}]
    sim = experiment(cluster={"sim": {"nodes": 5}}, faults=faults)
    assert resolved_target_count(sim, sim.faults[0]) == 3
    real = experiment(cluster={"backend": "kubernetes"}, faults=faults)
    assert resolved_target_count(real, real.faults[0]) is None


def test_pod_percent_follows_an_earlier_scale() -> None:
    exp = experiment(
        faults=[
            {"at": "5s", "action": "scale", "replicas": 10},
            {"at": "10s", "action": "pod-delete", "target": {"percent": "50%"}},
        ]
    )
    assert resolved_target_count(exp, exp.faults[1]) == 5
    assert resolved_target_count(exp, exp.faults[0]) is None  # scale hits the Deployment


# --- time and warnings -----------------------------------------------------------------


def test_expected_wall_time_adds_up_every_trial_and_follows_the_timeline() -> None:
    base = experiment(sweep={"workload.replicas": [1, 2, 3]}, trials=2)
    longer = experiment(sweep={"workload.replicas": [1, 2, 3]}, trials=2, timeline={"duration": "40s"})
    per_trial = trial_seconds(base)
    timeline = base.timeline
    assert per_trial > timeline.warmup + timeline.duration + timeline.cooldown
    assert build_plan(base).expected_seconds == pytest.approx(6 * per_trial)
    extra = longer.timeline.duration - base.timeline.duration
    assert build_plan(longer).expected_seconds - build_plan(base).expected_seconds == pytest.approx(6 * extra)


def _canonical_plan() -> Plan:
    return build_plan(load_experiment(CANONICAL))


def test_canonical_plan_warns_of_a_full_outage_at_one_replica_only() -> None:
    plan = _canonical_plan()
    outage = [w for w in plan.warnings if "full outage" in w]
    assert len(outage) == 1
    assert outage[0].startswith("at workload.replicas=1:")
    assert "1 of 1 pod" in outage[0]


def test_node_faults_with_one_node_warn_of_a_full_outage() -> None:
    exp = experiment(
        cluster={"sim": {"nodes": 1}},
        workload={"replicas": 2, "readinessProbe": PROBE, "tolerationSeconds": 5},
        faults=[{"at": "5s", "action": "node-drain"}],
    )
    assert any("1 node" in w and "full outage" in w for w in build_plan(exp).warnings)


def test_node_crash_with_default_tolerations_warns_it_heals_after_about_six_minutes() -> None:
    exp = experiment(timeline={"duration": "1m"}, faults=[{"at": "10s", "action": "node-crash"}])
    warnings = build_plan(exp).warnings
    heal = [w for w in warnings if "tolerationSeconds" in w]
    assert len(heal) == 1
    assert "50s" in heal[0] and "5m" in heal[0] and "5m50s" in heal[0]


def test_default_tolerations_are_told_even_when_the_measurement_covers_the_heal() -> None:
    exp = experiment(timeline={"duration": "8m"}, faults=[{"at": "10s", "action": "node-crash"}])
    (heal,) = [w for w in build_plan(exp).warnings if "tolerationSeconds" in w]
    assert "default tolerationSeconds (5m)" in heal and "about 5m50s" in heal


def test_short_tolerations_or_a_restore_within_the_measurement_do_not_warn_about_healing() -> None:
    short = experiment(
        workload={"replicas": 3, "readinessProbe": PROBE, "tolerationSeconds": 5},
        timeline={"duration": "2m"},
        faults=[{"at": "10s", "action": "node-hang"}],
    )
    restored = experiment(
        timeline={"duration": "1m"}, faults=[{"at": "10s", "action": "node-crash", "restoreAfter": "20s"}]
    )
    for exp in (short, restored):
        assert not any("tolerationSeconds" in w for w in build_plan(exp).warnings)


def test_a_fault_at_or_after_the_end_warns_it_never_fires() -> None:
    # The loader rejects this file; a plan built from a model made in code still warns.
    exp = experiment(timeline={"duration": "30s"}, faults=[{"at": "30s", "action": "pod-delete"}])
    plan = build_plan(exp)
    assert any("never fires" in w for w in plan.warnings)
    assert fault_schedule(plan.trials[0].experiment) == []


def test_missing_readiness_probe_and_a_short_recovery_budget_warn() -> None:
    no_probe = Experiment.model_validate({"name": "x", "workload": {"replicas": 2}})
    assert any("readinessProbe" in w for w in build_plan(no_probe).warnings)
    short_budget = experiment(
        workload={"replicas": 2, "readinessProbe": {"periodSeconds": 10}, "app": {"startupSeconds": 3}},
        faults=[{"at": "5s", "action": "pod-delete"}],
        measure={"recoveryBudget": "2s"},
    )
    assert any("recoveryBudget" in w for w in build_plan(short_budget).warnings)
    assert not any("readinessProbe" in w for w in build_plan(short_budget).warnings)


def test_sim_warns_about_kubernetes_only_workload_settings() -> None:
    exp = experiment(
        workload={"replicas": 2, "readinessProbe": PROBE, "image": "nginx", "command": ["nginx"]}
    )
    warnings = build_plan(exp).warnings
    assert any("workload.image" in w and "workload.command" in w for w in warnings)
    real = exp.model_copy(update={"cluster": exp.cluster.model_copy(update={"backend": "kubernetes"})})
    assert not any("workload.image" in w for w in build_plan(real).warnings)


def test_a_healthy_experiment_has_no_warnings() -> None:
    exp = experiment(faults=[{"at": "5s", "action": "pod-delete"}])
    assert build_plan(exp).warnings == ()


# --- rendering -----------------------------------------------------------------------


def test_render_plan_shows_points_trials_faults_time_and_warnings() -> None:
    plan = _canonical_plan()
    text = render_plan(plan)
    assert "3 points x 2 trials = 6 trials" in text
    for trial in plan.trials:
        assert f"{trial.id} (seed {trial.seed})" in text
    assert "point p01: workload.replicas=1" in text
    assert "15s  pod-delete" in text
    assert "1 pod of 1" in text and "1 pod of 3" in text
    assert "gracePeriodSeconds=0" in text
    assert "expected wall time: about" in text
    assert "! at workload.replicas=1:" in text


def test_render_plan_shortens_long_fault_schedules() -> None:
    exp = experiment(
        timeline={"duration": "1m"}, faults=[{"at": "1s", "action": "pod-delete", "every": "1s"}]
    )
    text = render_plan(build_plan(exp))
    assert "f0.58" in text and "f0.59" not in text
    assert "more" in text


# --- node timings (issue 11) -----------------------------------------------------------


def _sim_timings(**timings: str) -> Experiment:
    return experiment(cluster={"backend": "sim", "sim": {"timings": timings}})


def test_a_grace_period_shorter_than_the_heartbeat_warns_that_nodes_flap() -> None:
    (warning,) = [w for w in build_plan(_sim_timings(nodeMonitorGracePeriod="4s")).warnings if "nodeMonitorGracePeriod" in w]
    assert "cluster.sim.timings.nodeMonitorGracePeriod (4s)" in warning
    assert "4 x nodeHeartbeatPeriod (10s)" in warning and "flap" in warning
    assert "at least 40s" in warning


def test_a_grace_period_of_a_few_heartbeats_warns_how_many_may_be_missed() -> None:
    plan = build_plan(_sim_timings(nodeMonitorGracePeriod="3s", nodeHeartbeatPeriod="1s"))
    (warning,) = [w for w in plan.warnings if "nodeMonitorGracePeriod" in w]
    assert "misses 3 heartbeats in a row" in warning and "flap" not in warning


@pytest.mark.parametrize(("grace", "heartbeat"), [("40s", "10s"), ("50s", "10s"), ("2s", "0.5s")])
def test_a_grace_period_of_four_heartbeats_or_more_does_not_warn(grace: str, heartbeat: str) -> None:
    plan = build_plan(_sim_timings(nodeMonitorGracePeriod=grace, nodeHeartbeatPeriod=heartbeat))
    assert not [w for w in plan.warnings if "nodeMonitorGracePeriod" in w]


# --- a scale fault under an autoscaler (issue 14) ---------------------------------------


def _autoscaled(backend: str, *faults: dict[str, Any]) -> Experiment:
    workload = {"replicas": 2, "readinessProbe": PROBE, "resources": {"requests": {"cpu": "100m"}}, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}
    return experiment(cluster={"backend": backend}, workload=workload, faults=list(faults))


def _fights(plan: Plan) -> list[str]:
    return [w for w in plan.warnings if "fights workload.autoscaling" in w]


def test_a_scale_fault_under_an_autoscaler_warns_that_the_hpa_fights_it() -> None:
    (inside,) = _fights(build_plan(_autoscaled("sim", {"at": "5s", "action": "scale", "replicas": 3})))
    assert inside.startswith("f0 scale to 3 replicas fights workload.autoscaling")
    assert "replaces the fault's 3 with what the CPU asks for" in inside
    assert "every 15s, cluster.sim.timings.hpaSyncPeriod" in inside
    assert "Drop the scale fault or workload.autoscaling" in inside
    (outside,) = _fights(build_plan(_autoscaled("kubernetes", {"at": "5s", "action": "scale", "replicas": 6})))
    assert "sets 4 again (6 is outside minReplicas-maxReplicas 2-4)" in outside
    assert "every 15s by kube-controller-manager's default" in outside


def test_a_scale_fault_to_zero_under_an_autoscaler_warns_that_autoscaling_stops() -> None:
    warnings = build_plan(_autoscaled("kubernetes", {"at": "5s", "action": "scale", "replicas": 0})).warnings
    assert "f0 scale to 0 replicas is a full outage until the end of the trial" in warnings
    assert any("switches workload.autoscaling off" in w and "ScalingDisabled" in w for w in warnings)


def test_a_scale_fault_without_an_autoscaler_or_an_autoscaler_without_one_does_not_warn() -> None:
    plain = experiment(faults=[{"at": "5s", "action": "scale", "replicas": 5}])
    assert build_plan(plain).warnings == ()
    assert not _fights(build_plan(_autoscaled("kubernetes", {"at": "5s", "action": "pod-delete"})))


def test_the_fight_is_named_only_at_the_sweep_points_with_an_autoscaler() -> None:
    exp = _autoscaled("kubernetes", {"at": "5s", "action": "scale", "replicas": 3})
    swept = exp.model_copy(update={"sweep": {"workload.autoscaling.maxReplicas": [2, 4]}})
    narrow, wide = _fights(build_plan(swept))
    assert narrow.startswith("at workload.autoscaling.maxReplicas=2: f0 scale to 3") and "sets 2 again" in narrow
    assert wide.startswith("at workload.autoscaling.maxReplicas=4: f0 scale to 3") and "what the CPU asks for" in wide


@pytest.mark.parametrize(
    ("command", "proxy_mode", "warned"),
    [
        (["python3", "-m", "http.server", "--bind", "127.0.0.1", "$(PORT)"], "auto", True),
        (["sh", "-c", "exec server --listen localhost:$(PORT)"], "nftables", True),
        (["python3", "-m", "http.server", "--bind", "$(HOST)", "$(PORT)"], "auto", False),
        # The user-space proxy reaches every pod on 127.0.0.1: loopback is right there.
        (["python3", "-m", "http.server", "--bind", "127.0.0.1", "$(PORT)"], "userspace", False),
    ],
)
def test_a_command_bound_to_loopback_warns_that_pods_are_reached_at_their_own_ip(command, proxy_mode, warned) -> None:
    exp = experiment(cluster={"sim": {"proxyMode": proxy_mode}}, workload={"command": command, "readinessProbe": PROBE})
    warnings = [w for w in build_plan(exp).warnings if "listens on loopback" in w]
    assert bool(warnings) == warned, warnings
    if warned:
        assert "$(HOST)" in warnings[0]
