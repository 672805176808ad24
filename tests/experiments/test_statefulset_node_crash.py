"""statefulset-node-crash: a Deployment replaces a crashed node's pod after its toleration;
a StatefulSet keeps the identity taken until the stuck pod is force-deleted."""

from __future__ import annotations

import pytest

from tests.experiments.lessons import events_of, fault_times, trials_by

pytestmark = pytest.mark.slow

# Scaled down: heartbeat and monitor every 1 s, a 3 s grace period, a 2 s toleration
# (Kubernetes: 10 s, 5 s, 50 s, and this file's 20 s); the force delete at 9 s.
SHORT = (
    "--set", "cluster.sim.timings.nodeHeartbeatPeriod=1s",
    "--set", "cluster.sim.timings.nodeMonitorPeriod=1s",
    "--set", "cluster.sim.timings.nodeMonitorGracePeriod=3s",
    "--set", "workload.tolerationSeconds=2",
    "--set", "faults.0.at=1s",
    "--set", "faults.1.at=9s",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=13s",
)


def test_a_statefulset_waits_for_the_force_delete_a_deployment_does_not(run_lesson) -> None:
    run = run_lesson("statefulset-node-crash.yaml", *SHORT)
    trials = trials_by(run, "workload.kind")

    replaced_after = {}
    for kind, trial in trials.items():
        crash, force = fault_times(trial)
        (evicted,) = events_of(trial, "pod_evicted").itertuples()
        assert crash < evicted.ts < force, kind
        created = events_of(trial, "pod_created")
        replacement = created[(created["ts"] > evicted.ts)]
        assert len(replacement) == 1, (kind, replacement)
        replaced_after[kind] = (float(replacement["ts"].iloc[0]), replacement["name"].iloc[0], evicted.name, force)
        forced = events_of(trial, "pod_deleted").query("reason == 'pod-delete'")
        assert list(forced["name"]) == [evicted.name], "the force delete took the pod stuck Terminating"

    # Deployment: a new, differently named pod as soon as the eviction started.
    ts, name, evicted_name, force = replaced_after["Deployment"]
    assert name != evicted_name and ts < force
    # StatefulSet: the same name, and only once the force delete freed it.
    ts, name, evicted_name, force = replaced_after["StatefulSet"]
    assert name == evicted_name and ts >= force
