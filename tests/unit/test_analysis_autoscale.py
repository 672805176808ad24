"""The autoscaling metrics, worked by hand on small frames (definitions in chaoslab/analysis/autoscale.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from chaoslab.analysis.autoscale import (
    expected_replicas,
    first_scale_up,
    load_spike,
    load_steps,
    predicted_first_scale_up,
    scale_events,
    time_to_capacity,
    users_over_time,
)
from chaoslab.spec import Experiment

T0 = 1_000.0


def experiment(stages: list[dict] | None) -> Experiment:
    return Experiment.model_validate({"name": "x", "load": {"users": 2, "stages": stages}, "timeline": {"duration": "60s"}})


def events(*rows: tuple[float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"ts": ts, "kind": "hpa_scaled", "object": "hpa", "name": "web", "node": "", "reason": "SuccessfulRescale", "detail": d} for ts, d in rows]
        or None,
        columns=["ts", "kind", "object", "name", "node", "reason", "detail"],
    )


def test_the_spike_is_the_largest_rise_of_the_stages() -> None:
    stages = [{"duration": "10s", "users": 2}, {"duration": "20s", "users": 5}, {"duration": "5s", "users": 30}, {"duration": "25s", "users": 1}]
    spike = load_spike(experiment(stages))
    assert spike is not None and (spike.start_s, spike.end_s, spike.users_before, spike.users) == (30.0, 35.0, 5, 30)
    steps = load_steps(experiment(stages))
    assert list(steps["users"]) == [2, 2, 5, 30, 1] and steps["end_s"].iloc[-1] == math.inf
    assert load_spike(experiment(None)) is None
    assert load_spike(experiment([{"duration": "10s", "users": 1}])) is None  # falls: no spike
    # The last stage's spike runs to the end of the measurement.
    last = load_spike(experiment([{"duration": "10s", "users": 2}, {"duration": "20s", "users": 9}]))
    assert last is not None and last.end_s == 60.0


def test_first_scale_up_and_time_to_capacity() -> None:
    scaled = events((T0 + 12.0, "replicas=3 from=1 cpu=197%"), (T0 + 27.0, "replicas=4 from=3 cpu=110%"), (T0 + 90.0, "replicas=1 from=4"))
    assert first_scale_up(scaled, T0, T0 + 60) == 12.0
    assert math.isnan(first_scale_up(scaled, T0 + 30, T0 + 60))  # only a scale-down after
    endpoints = pd.DataFrame({"ts": [T0 - 5, T0 + 14, T0 + 15, T0 + 29.5], "ready": [1, 2, 3, 4], "desired": [1, 3, 3, 4]})
    # The most it asked for in the window is 4: reached 29.5 s after the spike.
    assert time_to_capacity(endpoints, scaled, T0, T0 + 60) == 29.5
    assert time_to_capacity(endpoints, scaled, T0, T0 + 20) == 15.0  # only the 3 counts
    assert math.isnan(time_to_capacity(endpoints, events(), T0, T0 + 60))


def test_a_real_hpas_events_name_only_the_new_size() -> None:
    scaled = scale_events(events((T0 + 40, "replicas=2 message=New size: 2"), (T0 + 10, "replicas=5 message=New size: 5")))
    assert list(scaled["replicas"]) == [5, 2]
    assert math.isnan(scaled["previous"].iloc[0]) and scaled["previous"].iloc[1] == 5
    assert first_scale_up(events((T0 + 10, "replicas=5 message=New size: 5")), T0, T0 + 60) == 10.0


def test_expected_replicas_is_the_formula_on_what_was_measured() -> None:
    samples = pd.DataFrame(
        {
            "ts": [T0, T0 + 15, T0 + 30, T0 + 45],
            "current": [1, 1, 3, 3],
            "utilization": [None, 197, 85, 10],
            "target": [80, 80, 80, 80],
            "ready": [0, 1, 3, 3],
        }
    )
    expected = expected_replicas(samples, tolerance=0.1, min_replicas=1, max_replicas=4)
    # 197/80 = 2.46 -> ceil(2.46 x 1) = 3; 85/80 = 1.06, within 10 %: stay at 3;
    # 10/80 = 0.125 -> ceil(0.125 x 3) = ceil(0.375) = 1.
    assert expected["expected"].iloc[0] != expected["expected"].iloc[0]  # NaN: no metric
    assert list(expected["expected"].iloc[1:]) == [3.0, 3.0, 1.0]
    assert list(expected_replicas(samples, 0.1, 1, 2)["expected"].iloc[1:]) == [2.0, 2.0, 1.0]  # bounded by maxReplicas


def test_expected_replicas_counts_the_current_pods_where_the_status_does_not_say_which_counted() -> None:
    # autoscaler.csv from a real HPA (kubernetes backend): no ready/unready/missing counts.
    samples = pd.DataFrame(
        {"ts": [T0, T0 + 15, T0 + 30], "current": [2, 2, 4], "utilization": [None, 121, 30], "target": [60, 60, 60], "ready": [None, None, None]}
    )
    expected = expected_replicas(samples, tolerance=0.1, min_replicas=2, max_replicas=None)
    # 121/60 x 2 = 4.03 -> 5; 30/60 x 4 = 2.
    assert math.isnan(expected["expected"].iloc[0]) and list(expected["expected"].iloc[1:]) == [5.0, 2.0]


def test_predicted_first_scale_up_is_two_windows_and_a_sync() -> None:
    assert predicted_first_scale_up(15.0, 15.0) == 45.0
    assert predicted_first_scale_up(3.0, 3.0) == pytest.approx(9.0)


def test_users_over_time_inside_the_measurement() -> None:
    load = pd.DataFrame({"ts": [T0 - 0.1, T0, T0 + 0.1, T0 + 10], "users": [2, 2, 12, 12]})
    frame = users_over_time(load, T0, T0 + 5)
    assert list(frame["t_s"].round(6)) == [0.0, 0.1] and list(frame["users"]) == [2, 12]
