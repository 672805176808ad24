"""node-crash-tolerations: pods of a crashed node come back after grace + tolerationSeconds."""

from __future__ import annotations

import math

import pytest

from tests.experiments.lessons import fault_times, first_event_after, summary_rows, trials_by

pytestmark = pytest.mark.slow

# Scaled down: heartbeat and monitor every 1 s, a 3 s grace period (Kubernetes: 10 s, 5 s,
# 50 s); "default" tolerates the unreachable node for 6 s, "tuned" for 1 s.
DEFAULT, TUNED = 6, 1
SHORT = (
    "--set", "cluster.sim.timings.nodeHeartbeatPeriod=1s",
    "--set", "cluster.sim.timings.nodeMonitorPeriod=1s",
    "--set", "cluster.sim.timings.nodeMonitorGracePeriod=3s",
    "--set", f"sweep={{workload.tolerationSeconds: [{DEFAULT}, {TUNED}]}}",
    "--set", "workload.app.startupSeconds=0.5",
    "--set", "faults.0.at=1s",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=12s",
)


def test_tuned_tolerations_bring_capacity_back_sooner(run_lesson) -> None:
    run = run_lesson("node-crash-tolerations.yaml", *SHORT)
    trials = trials_by(run, "workload.tolerationSeconds")

    evicted = {}
    for seconds, trial in trials.items():
        (crash,) = fault_times(trial)
        # Nothing is evicted before the node is noticed and the toleration has run out.
        evicted[seconds] = first_event_after(trial, "pod_evicted", crash)
        noticed = first_event_after(trial, "node_not_ready", crash)
        assert 1.5 < noticed < 5.5, (seconds, noticed)
        if not math.isnan(evicted[seconds]):
            assert evicted[seconds] >= noticed + seconds - 0.5, (seconds, evicted[seconds], noticed)
    assert not math.isnan(evicted[TUNED]), "the tuned pod is evicted within the run"
    # NaN for the default means "not even evicted by the end": later still.
    assert math.isnan(evicted[DEFAULT]) or evicted[DEFAULT] > evicted[TUNED] + 3

    # Capacity (ready endpoints back to 3) follows the eviction: sooner when tuned.
    capacity = summary_rows(run).set_index("workload.tolerationSeconds")["capacity_recovered_s"]
    assert not math.isnan(capacity[TUNED]), capacity
    assert math.isnan(capacity[DEFAULT]) or capacity[DEFAULT] > capacity[TUNED] + 3, capacity
