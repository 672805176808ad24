"""scale-under-load: scaling a saturated service out raises throughput and lowers latency."""

from __future__ import annotations

import pytest

from tests.experiments.lessons import fault_times, measure_window, successes_per_second, summary_rows

pytestmark = pytest.mark.slow

SHORT = (
    "--set", "trials=1",
    "--set", "faults.0.at=4s",
    "--set", "timeline.warmup=2s",
    "--set", "timeline.duration=12s",
)
# The new pods need ~1.5 s to start and turn ready; "after" starts later than that.
SETTLE_S = 3.0


def test_four_replicas_serve_more_and_faster_than_one(run_lesson) -> None:
    run = run_lesson("scale-under-load.yaml", *SHORT)
    (trial,) = run.trials
    (scaled,) = fault_times(trial)
    start, end = measure_window(trial)
    assert end - (scaled + SETTLE_S) >= 4, "enough time after the scale to measure"

    before = successes_per_second(trial, start, scaled)
    after = successes_per_second(trial, scaled + SETTLE_S, end)
    row = summary_rows(run).iloc[0]
    p50_before, p50_after = row["p50_ms_before"], row["p50_ms_after"]
    # Directions with slack, not numbers: the machine is shared, but more pods get more of
    # its CPU, so either throughput rises or the queue (latency) shrinks, usually both.
    assert after > 1.15 * before or p50_after < 0.75 * p50_before, (before, after, p50_before, p50_after)
    assert after >= 0.9 * before and p50_after <= p50_before, (before, after, p50_before, p50_after)
    # The one replica was saturated: its requests queued well beyond their 25 ms of CPU.
    assert p50_before > 100, p50_before
