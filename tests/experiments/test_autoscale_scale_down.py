"""autoscale-scale-down: replicas stay for the stabilization window after the load falls, then shrink.

Shortened: 2 s metrics resolution and sync period, an 8 s stabilization window (the
controller flag, cluster.sim.timings.hpaDownscaleStabilization), 12 s of load, 20 s of
quiet. The lesson is the algorithm's: the scale-down comes no sooner than one window
after the last evaluation that asked for the peak, and at the first evaluation after.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.experiments.lessons import events_of, measure_window

pytestmark = pytest.mark.slow

RESOLUTION_S, SYNC_S, WINDOW_S = 2.0, 2.0, 8.0
SHORT = (
    "--set", f"cluster.sim.timings.metricsResolution={RESOLUTION_S:g}s",
    "--set", f"cluster.sim.timings.hpaSyncPeriod={SYNC_S:g}s",
    "--set", f"cluster.sim.timings.hpaDownscaleStabilization={WINDOW_S:g}s",
    "--set", "load.stages.0.duration=12s",
    "--set", "load.stages.1.duration=20s",
    "--set", "timeline.duration=32s",
    "--set", "timeline.warmup=2s",
)
# The control plane evaluates on a 20 ms tick; wall-clock stamps of two evaluations
# differ from their monotonic schedule by far less than this.
CLOCK_SLACK_S = 0.2


def test_replicas_stay_for_the_window_then_shrink(run_lesson) -> None:
    run = run_lesson("autoscale-scale-down.yaml", *SHORT)
    (trial,) = run.trials
    start, end = measure_window(trial)
    samples = trial.autoscaler.copy()
    for column in ("ts", "current", "desired", "recommendation"):
        samples[column] = pd.to_numeric(samples[column], errors="coerce")
    scaled = events_of(trial, "hpa_scaled")
    ups = scaled[scaled["detail"].str.extract(r"replicas=(\d+) from=(\d+)").astype(int).pipe(lambda m: m[0] > m[1])]
    downs = scaled[scaled["detail"].str.extract(r"replicas=(\d+) from=(\d+)").astype(int).pipe(lambda m: m[0] < m[1])]
    assert len(ups), "the 12 users pushed it above one replica"
    assert len(downs), f"it scaled down before the end; samples:\n{samples}"
    peak = int(samples["desired"].max())
    # The evaluation that scaled down, and the count it held until then.
    down_sample = samples[samples["desired"] < samples["current"]].iloc[0]
    first_down, held = float(down_sample["ts"]), int(down_sample["current"])
    assert abs(first_down - float(downs["ts"].iloc[0])) < CLOCK_SLACK_S  # its hpa_scaled event
    # The last evaluation before it whose recommendation was at least that count: the
    # window counts from there.
    earlier = samples[samples["ts"] < first_down]
    last_high = float(earlier[earlier["recommendation"] >= held]["ts"].iloc[-1])
    # In between, the formula already asked for fewer and the window held the count.
    between = earlier[earlier["ts"] > last_high]
    assert len(between) >= 2 and (between["recommendation"] < held).all() and (between["desired"] == held).all(), samples
    assert (between["reason"] == "ScaleDownStabilized").all()
    waited = first_down - last_high
    assert WINDOW_S - CLOCK_SLACK_S <= waited <= WINDOW_S + SYNC_S + CLOCK_SLACK_S, (waited, samples)
    assert peak >= 2 and start < first_down < end
