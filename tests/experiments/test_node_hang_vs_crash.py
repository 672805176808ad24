"""node-hang-vs-crash: a lost node's pod costs timeouts until its endpoint drops after the grace period."""

from __future__ import annotations

import pytest

from tests.experiments.lessons import (
    events_of,
    failures_by_class,
    fault_times,
    first_event_after,
    measure_window,
    trials_by,
)

pytestmark = pytest.mark.slow

GRACE_S = 3.0
# Failed requests allowed after the endpoint drop (see the test).
LATE_FAILURES_ALLOWED = 6
# Heartbeat and monitor every 1 s, a 3 s grace period (Kubernetes: 10 s, 5 s, 50 s); the
# node comes back 6 s after the fault.
SHORT = (
    "--set", "cluster.sim.timings.nodeHeartbeatPeriod=1s",
    "--set", "cluster.sim.timings.nodeMonitorPeriod=1s",
    "--set", f"cluster.sim.timings.nodeMonitorGracePeriod={GRACE_S:g}s",
    "--set", "workload.app.startupSeconds=0.5",
    "--set", "faults.0.at=1s",
    "--set", "faults.0.restoreAfter=6s",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=10s",
)


def test_lost_node_times_out_until_its_endpoint_drops(run_lesson) -> None:
    run = run_lesson("node-hang-vs-crash.yaml", *SHORT)
    trials = trials_by(run, "faults.0.action")
    assert set(trials) == {"node-crash", "node-hang"}

    for action, trial in trials.items():
        (fault,) = fault_times(trial)
        failures = failures_by_class(trial, *measure_window(trial))
        # No RST from a dead or frozen machine: clients wait for their timeout.
        assert failures["timeout"] > 0, (action, failures)
        if action == "node-hang":
            assert failures["timeout"] >= 0.8 * sum(failures.values()), (action, failures)
        # The endpoint stays until the node controller gives up on the node: the grace
        # period after the last heartbeat (1 s), checked every 1 s.
        dropped = first_event_after(trial, "endpoint_removed", fault)
        assert GRACE_S - 1 - 0.5 < dropped < GRACE_S + 1 + 1.5, (action, dropped)
        # ... and then the errors stop. Nearly: on the kernel Service path a few requests
        # (0 in most runs, up to 4 in about one run of eight on this machine) are refused
        # seconds later, as on real nodes after a crash (docs/calibration.md, point 2:
        # not explained yet; conntrack entries of the SYNs sent to the lost pod are the
        # lead). What the lesson shows must hold: the outage ends with the drop.
        load = trial.load[trial.load["ts"].astype(float) > fault + dropped + 0.3]
        late = int(load["failures"].sum())
        assert late <= LATE_FAILURES_ALLOWED and late <= 0.02 * int(load["requests"].sum()), (action, late)

    # The way back: the crashed node restarts its container, the hung one resumes it.
    assert len(events_of(trials["node-crash"], "container_restarted")) >= 1
    assert len(events_of(trials["node-hang"], "container_restarted")) == 0
