"""replicas-pod-delete (the demo): with 3 replicas a deleted pod costs almost nothing, with 1 an outage."""

from __future__ import annotations

import pytest

from tests.experiments.lessons import failures_by_class, measure_window, summary_rows, trials_by

pytestmark = pytest.mark.slow

SHORT = (
    "--set", "sweep={workload.replicas: [1, 3]}",
    "--set", "trials=1",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=8s",
    "--set", "faults.0.at=2s",
)


def test_three_replicas_stay_available_where_one_has_an_outage(run_lesson) -> None:
    run = run_lesson("replicas-pod-delete.yaml", *SHORT, exit_codes=(1,))  # replicas=1 misses the 99 % SLO: the demo's point

    summary = summary_rows(run).set_index("workload.replicas")
    one, three = summary.loc[1], summary.loc[3]
    assert three["availability"] > one["availability"]
    assert three["availability"] >= 0.99
    # 1 replica misses the SLO. By how much depends on how many requests the users sent
    # during the outage: those that met the deleted pod's address wait out their timeout
    # (as on real nodes, where this gave 0.97 too), so compare what clients suffered.
    assert one["availability"] < 0.99
    assert three["failed_requests"] < one["failed_requests"]
    # 1 replica: nothing listens until the replacement is ready, so clients are refused.
    trial = trials_by(run, "workload.replicas")[1]
    assert failures_by_class(trial, *measure_window(trial))["refused"] > 0
    # ... and it recovers: the outage is the replacement's start, not the rest of the run.
    assert 0 < one["time_to_recover_s"] < 6
