"""The experiment library on real nodes: each lesson's point, measured on real kubelets.

The same files as tests/experiments (which run them on sim), run with `--backend
kubernetes` and the docker node provider against the real-node cluster, shortened with
`--set` where the lesson allows it. The timings that are not the experiment's are the
cluster's (tests/e2e/realnodes.py): node-monitor grace period 10 s, an 8 s node Lease,
CrashLoopBackOff starting at 1 s (the kubelet's ReduceDefaultCrashLoopBackOffDecay gate).
Assertions are the lesson's directions with slack, not exact numbers: the machine is shared.
"""

from __future__ import annotations

import math
import re

import pytest

from tests.experiments.lessons import (
    events_of,
    failures_by_class,
    fault_times,
    first_event_after,
    measure_window,
    min_ready_endpoints,
    successes_per_second,
    summary_rows,
    trials_by,
)
from tests.realnodes.conftest import LessonRun, save_numbers

pytestmark = pytest.mark.realnodes

# localcluster.py's --node-monitor-grace-period: a dead kubelet's node turns Unknown this
# long after its last heartbeat (+ the 1 s monitor period, + up to one 2 s renewal).
GRACE_S = 10.0

# The real nodes' timings, for sim (the kubernetes backend ignores cluster.sim): passed on
# every run, so the same command on sim gives the numbers docs/calibration.md compares.
SIM_TIMINGS = (
    "--set", "cluster.sim.timings.nodeHeartbeatPeriod=2s",
    "--set", "cluster.sim.timings.nodeMonitorPeriod=1s",
    "--set", "cluster.sim.timings.nodeMonitorGracePeriod=10s",
    "--set", "cluster.sim.timings.backOffInitial=1s",
)
DEFAULT_TOLERATION, TUNED_TOLERATION = 8, 1
POD_DELETE = (
    *SIM_TIMINGS,
    "--set", "sweep={workload.replicas: [1, 3]}",
    "--set", "trials=1",
    "--set", "timeline.warmup=2s",
    "--set", "timeline.duration=10s",
    "--set", "faults.0.at=3s",
)
CRASHLOOP = (
    *SIM_TIMINGS,
    "--set", "faults.0.at=1s",
    "--set", "faults.0.every=5s",
    "--set", "faults.0.repeat=3",
    "--set", "workload.app.startupSeconds=0.3",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=16s",
)
NODE_CRASH = (
    *SIM_TIMINGS,
    "--set", f"sweep={{workload.tolerationSeconds: [{DEFAULT_TOLERATION}, {TUNED_TOLERATION}]}}",
    "--set", "workload.app.startupSeconds=0.5",
    "--set", "faults.0.at=2s",
    "--set", "timeline.warmup=2s",
    "--set", "timeline.duration=30s",
)
NODE_DRAIN = (
    *SIM_TIMINGS,
    # The lesson drains both nodes hosting the 2 pods: 2 of the 3 workers.
    "--set", "cluster.kubernetes.maxBlastRadius=70%",
    "--set", "trials=1",
    "--set", "workload.app.startupSeconds=0.5",
    "--set", "faults.0.at=2s",
    "--set", "timeline.warmup=2s",
    "--set", "timeline.duration=14s",
)
SCALE = (
    *SIM_TIMINGS,
    "--set", "trials=1",
    "--set", "faults.0.at=5s",
    "--set", "timeline.warmup=3s",
    "--set", "timeline.duration=15s",
)
NODE_HANG = (
    *SIM_TIMINGS,
    "--set", "workload.app.startupSeconds=0.5",
    "--set", "faults.0.at=2s",
    "--set", "faults.0.restoreAfter=16s",  # after the grace period, before any eviction
    "--set", "timeline.warmup=2s",
    "--set", "timeline.duration=24s",
)
LESSONS = {
    "replicas-pod-delete": POD_DELETE,
    "container-crashloop": CRASHLOOP,
    "node-crash-tolerations": NODE_CRASH,
    "node-drain-pdb": NODE_DRAIN,
    "scale-under-load": SCALE,
    "node-hang-vs-crash": NODE_HANG,
}


def test_pod_delete_three_replicas_stay_available_where_one_has_an_outage(run_on_nodes) -> None:
    result: LessonRun = run_on_nodes(
        "replicas-pod-delete.yaml",
        *POD_DELETE,
        exit_codes=(1,),  # 1 replica misses the SLO: the lesson
    )
    save_numbers("replicas-pod-delete", result)
    summary = summary_rows(result.run).set_index("workload.replicas")
    one, three = summary.loc[1], summary.loc[3]
    assert three["availability"] >= 0.98, three
    # How far availability falls with 1 replica depends on how many requests the users
    # sent in the outage (they wait out timeouts on the deleted pod's address): compare
    # what clients suffered instead.
    assert three["failed_requests"] < one["failed_requests"], (one["failed_requests"], three["failed_requests"])
    # 1 replica: an outage of about container start + app startup + readiness probe.
    assert 0 < one["time_to_recover_s"] < 8, one
    assert three["error_window_s"] < one["error_window_s"] < 8, (one["error_window_s"], three["error_window_s"])
    assert three["error_window_s"] < 1, three
    trial = trials_by(result.run, "workload.replicas")[1]
    # Nothing behind the Service: kube-proxy rejects the connection, clients are refused
    # (and those sent to the deleted pod's address before kube-proxy knew time out).
    assert failures_by_class(trial, *measure_window(trial))["refused"] > 0


def test_container_kill_crashloop_each_restart_waits_longer(run_on_nodes) -> None:
    result = run_on_nodes(
        "container-crashloop.yaml",
        *CRASHLOOP,
    )
    save_numbers("container-crashloop", result)
    (trial,) = result.run.trials
    restarts = events_of(trial, "container_restarted")
    counts = [int(re.search(r"restartCount=(\d+)", detail).group(1)) for detail in restarts["detail"]]
    assert counts == [1, 2, 3], restarts
    assert restarts["name"].nunique() == 1, "the same pod restarts in place"
    died = events_of(trial, "container_died")
    died = died[died["name"] == restarts["name"].iloc[0]]
    waits = [float(ts) - float(died[died["ts"] <= ts]["ts"].iloc[-1]) for ts in restarts["ts"]]
    # Back-off 0, 1, 2 s; the kubelet sees a death at its next PLEG relist (every 1 s).
    assert waits[2] > waits[0] + 1, waits
    windows = summary_rows(result.run).sort_values("fault_ts")["error_window_s"].tolist()
    assert len(windows) == 3 and all(w > 0 for w in windows), windows
    assert windows[2] > windows[0], windows


def test_node_crash_tuned_tolerations_bring_capacity_back_sooner(run_on_nodes) -> None:
    default, tuned = DEFAULT_TOLERATION, TUNED_TOLERATION
    result = run_on_nodes(
        "node-crash-tolerations.yaml",
        *NODE_CRASH,
    )
    save_numbers("node-crash-tolerations", result)
    trials = trials_by(result.run, "workload.tolerationSeconds")
    evicted = {}
    for seconds, trial in trials.items():
        (crash,) = fault_times(trial)
        noticed = first_event_after(trial, "node_not_ready", crash)
        assert GRACE_S - 2 < noticed < GRACE_S + 8, (seconds, noticed)
        evicted[seconds] = first_event_after(trial, "pod_evicted", crash)
        assert evicted[seconds] >= noticed + seconds - 1, (seconds, evicted[seconds], noticed)
    assert evicted[default] > evicted[tuned] + 4, evicted
    capacity = summary_rows(result.run).set_index("workload.tolerationSeconds")["capacity_recovered_s"]
    assert not math.isnan(capacity[tuned]), capacity
    assert math.isnan(capacity[default]) or capacity[default] > capacity[tuned] + 4, capacity


def test_node_drain_budget_keeps_an_endpoint_where_a_bare_drain_drops_to_zero(run_on_nodes) -> None:
    result = run_on_nodes(
        "node-drain-pdb.yaml",
        *NODE_DRAIN,
    )
    save_numbers("node-drain-pdb", result)
    trials = trials_by(result.run, "workload.podDisruptionBudget")
    bare, budget = trials["None"], trials["{'minAvailable': 1}"]
    for trial in (bare, budget):
        assert len(events_of(trial, "pod_evicted")) == 2, trial.params
        _, end = measure_window(trial)
        assert min_ready_endpoints(trial, end - 0.5, end) == 2, trial.params
    assert min_ready_endpoints(bare, *measure_window(bare)) == 0
    assert failures_by_class(bare, *measure_window(bare))["refused"] > 0
    assert min_ready_endpoints(budget, *measure_window(budget)) >= 1
    evictions = events_of(budget, "pod_evicted")["ts"].astype(float).tolist()
    ready = events_of(budget, "endpoint_added")
    first_ready = ready[ready["ts"] > evictions[0]]["ts"].astype(float).min()
    assert evictions[1] > first_ready, (evictions, first_ready)
    assert budget.load["failures"].sum() <= 0.02 * budget.load["requests"].sum()


def test_scale_under_load_more_replicas_serve_more(run_on_nodes) -> None:
    result = run_on_nodes(
        "scale-under-load.yaml",
        *SCALE,
    )
    save_numbers("scale-under-load", result)
    (trial,) = result.run.trials
    (scaled,) = fault_times(trial)
    start, end = measure_window(trial)
    settle = 4.0  # the new pods start and turn ready
    before = successes_per_second(trial, start, scaled)
    after = successes_per_second(trial, scaled + settle, end)
    row = summary_rows(result.run).iloc[0]
    assert after > 1.15 * before or row["p50_ms_after"] < 0.75 * row["p50_ms_before"], (before, after, row.to_dict())
    assert row["p50_ms_before"] > 50, row.to_dict()


def test_node_hang_and_crash_time_out_until_the_endpoint_drops(run_on_nodes) -> None:
    result = run_on_nodes("node-hang-vs-crash.yaml", *NODE_HANG)
    save_numbers("node-hang-vs-crash", result)
    trials = trials_by(result.run, "faults.0.action")
    assert set(trials) == {"node-crash", "node-hang"}
    for action, trial in trials.items():
        (fault,) = fault_times(trial)
        failures = failures_by_class(trial, *measure_window(trial))
        # No RST from a killed or frozen node (`docker kill` / `docker pause`): clients wait.
        assert failures["timeout"] > 0, (action, failures)
        # The endpoint stays until the node controller gives up on the node.
        dropped = first_event_after(trial, "endpoint_removed", fault)
        assert GRACE_S - 3 < dropped < GRACE_S + 4, (action, dropped)
        # tolerationSeconds 300: the node is back long before anything is evicted.
        assert math.isnan(first_event_after(trial, "pod_evicted", fault)), action
    # The way back: a crashed node restarts its pod's container, a hung one resumes it.
    assert len(events_of(trials["node-crash"], "container_restarted")) >= 1
    assert len(events_of(trials["node-hang"], "container_restarted")) == 0
