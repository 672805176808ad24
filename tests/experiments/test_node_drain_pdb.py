"""node-drain-pdb: a PodDisruptionBudget keeps minAvailable endpoints ready through a drain."""

from __future__ import annotations

import pytest

from tests.experiments.lessons import (
    events_of,
    failures_by_class,
    measure_window,
    min_ready_endpoints,
    trials_by,
)

pytestmark = pytest.mark.slow

NO_PDB, PDB = "None", "{'minAvailable': 1}"
# The refused eviction is retried every 1 s (kubectl drain: 5 s).
SHORT = (
    "--set", "cluster.sim.timings.drainRetryInterval=1s",
    "--set", "trials=1",
    "--set", "workload.app.startupSeconds=0.5",
    "--set", "faults.0.at=1s",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=8s",
)


def test_the_budget_keeps_an_endpoint_ready_where_a_bare_drain_drops_to_zero(run_lesson) -> None:
    run = run_lesson("node-drain-pdb.yaml", *SHORT)
    trials = trials_by(run, "workload.podDisruptionBudget")
    assert set(trials) == {NO_PDB, PDB}

    for trial in trials.values():
        # Both drains evict both original pods, and both end with 2 ready replacements.
        assert len(events_of(trial, "pod_evicted")) == 2, trial.params
        _, end = measure_window(trial)
        assert min_ready_endpoints(trial, end - 0.5, end) == 2, trial.params

    bare, budget = trials[NO_PDB], trials[PDB]
    # Without a budget both pods go at once: no endpoint, clients refused.
    assert min_ready_endpoints(bare, *measure_window(bare)) == 0
    assert failures_by_class(bare, *measure_window(bare))["refused"] > 0
    # With minAvailable: 1 at least one endpoint is ready throughout, and the second
    # eviction waits for the first replacement.
    assert min_ready_endpoints(budget, *measure_window(budget)) >= 1
    evictions = events_of(budget, "pod_evicted")["ts"].astype(float).tolist()
    first_ready = events_of(budget, "endpoint_added")
    first_ready = first_ready[first_ready["ts"] > evictions[0]]["ts"].astype(float).min()
    assert evictions[1] > first_ready, (evictions, first_ready)
    assert budget.load["failures"].sum() <= 0.01 * budget.load["requests"].sum()
