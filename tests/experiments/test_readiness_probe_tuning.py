"""readiness-probe-tuning: a shorter readiness period takes a wedged pod out of the Service sooner."""

from __future__ import annotations

import math

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

FAST, SLOW = 1, 4
THRESHOLD = 2  # failureThreshold, shortened from 3
SHORT = (
    "--set", f"sweep={{workload.readinessProbe.periodSeconds: [{FAST}, {SLOW}]}}",
    "--set", f"workload.readinessProbe.failureThreshold={THRESHOLD}",
    "--set", "trials=1",
    "--set", "faults.0.at=1s",
    "--set", "timeline.warmup=1s",
    "--set", "timeline.duration=12s",
)


def test_shorter_period_removes_the_wedged_pod_sooner(run_lesson) -> None:
    run = run_lesson("readiness-probe-tuning.yaml", *SHORT)
    trials = trials_by(run, "workload.readinessProbe.periodSeconds")

    removed = {}
    for period, trial in trials.items():
        (wedge,) = fault_times(trial)
        target = trial.faults["targets"].iloc[0]
        # Nothing died: the pod is never restarted, only taken out by its readiness probe.
        assert len(events_of(trial, "container_died")) == 0
        not_ready = events_of(trial, "pod_not_ready")
        assert list(not_ready["reason"]) == ["ReadinessProbe"], not_ready
        removed[period] = first_event_after(trial, "endpoint_removed", wedge, name=target)
        assert not math.isnan(removed[period]), period
        # failureThreshold failed probes, period apart, each failing after timeoutSeconds (1 s).
        assert (THRESHOLD - 1) * period + 1 - 0.5 <= removed[period] <= THRESHOLD * period + 1 + 1.5, (
            period,
            removed[period],
        )
    assert removed[FAST] < removed[SLOW], removed

    # Clients pay for the wait: requests to the wedged pod time out until it is removed.
    failed = {period: failures_by_class(trial, *measure_window(trial)) for period, trial in trials.items()}
    assert failed[FAST]["timeout"] > 0, failed
    assert failed[SLOW]["timeout"] > failed[FAST]["timeout"], failed
