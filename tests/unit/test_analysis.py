"""The numbers a report states, on synthetic frames whose answers are known by construction.

Every frame here is 100 ms buckets starting at T0; faults fire on bucket boundaries unless
a test says otherwise, so each expected value can be counted by hand from the pattern.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chaoslab import analysis
from chaoslab.cluster.base import EVENT_COLUMNS
from chaoslab.results import FAULT_COLUMNS, RunData, TrialData, TrialInfo
from chaoslab.spec import Experiment, MeasureSpec

T0 = 1_800_000_000.0
BUCKET = 0.1
DURATION = 30.0


def load_frame(
    requests: Sequence[float] | np.ndarray,
    failures: Sequence[float] | np.ndarray | None = None,
    *,
    failure_class: str = "refused",
    p50: float = 5.0,
    p95: float = 8.0,
    p99: float = 12.0,
    top: float = 20.0,
) -> pd.DataFrame:
    """A load.csv frame: one row per bucket from T0; latencies empty where nothing succeeded."""
    requests = np.asarray(requests, dtype=float)
    failures = np.zeros_like(requests) if failures is None else np.asarray(failures, dtype=float)
    n = len(requests)
    ok = requests - failures > 0
    frame = pd.DataFrame(
        {
            "ts": T0 + BUCKET * np.arange(n),
            "users": 10,
            "requests": requests,
            "failures": failures,
            **{c: np.zeros(n) for c in ("refused", "reset", "timeout", "http_5xx", "other")},
        }
    )
    frame[failure_class] = failures
    for column, value in (("p50_ms", p50), ("p95_ms", p95), ("p99_ms", p99), ("max_ms", top)):
        frame[column] = np.where(ok, value, np.nan)
    return frame


def seconds(start: float, end: float) -> slice:
    """The bucket indexes of [start, end) seconds after T0."""
    return slice(round(start / BUCKET), round(end / BUCKET))


def steady(requests_per_bucket: float = 10, duration: float = DURATION) -> tuple[np.ndarray, np.ndarray]:
    n = round(duration / BUCKET)
    return np.full(n, float(requests_per_bucket)), np.zeros(n)


def ttr(load: pd.DataFrame, fault_s: float, end_s: float = DURATION, *, slo: float = 0.99, window: float = 3.0) -> float:
    return analysis.time_to_recover(load, T0 + fault_s, T0 + end_s, bucket=BUCKET, slo_availability=slo, slo_window=window)


# --- a dip, then recovery --------------------------------------------------------------


def test_dip_then_recovery_has_known_error_window_and_time_to_recover() -> None:
    requests, failures = steady()
    failures[seconds(10, 12)] = 10  # every request fails for 2 s after the fault at 10 s
    load = load_frame(requests, failures)

    assert analysis.time_to_first_error(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(0.0)
    assert analysis.error_window(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(2.0)
    # The first 3 s window that holds no failing bucket starts at 12 s.
    assert ttr(load, 10.0) == pytest.approx(2.0)
    assert analysis.availability(load, T0, T0 + DURATION, bucket=BUCKET) == pytest.approx(2800 / 3000)
    assert analysis.availability(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(1800 / 2000)


def test_times_count_from_the_fault_not_from_its_bucket() -> None:
    requests, failures = steady()
    failures[seconds(10, 12)] = 10
    load = load_frame(requests, failures)
    # The fault fires 50 ms into the bucket that starts at 10.0 s: that bucket is its first.
    assert analysis.time_to_first_error(load, T0 + 10.05, T0 + DURATION, bucket=BUCKET) == pytest.approx(0.0)
    assert analysis.error_window(load, T0 + 10.05, T0 + DURATION, bucket=BUCKET) == pytest.approx(1.95)
    assert ttr(load, 10.05) == pytest.approx(1.95)


def test_first_error_comes_after_a_delay() -> None:
    requests, failures = steady()
    failures[seconds(11.5, 12)] = 10
    load = load_frame(requests, failures)
    assert analysis.time_to_first_error(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(1.5)
    assert analysis.error_window(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(0.5)
    assert ttr(load, 10.0) == pytest.approx(2.0)


# --- never recovers, never dips ----------------------------------------------------------


def test_never_recovering_is_nan_not_zero() -> None:
    requests, failures = steady()
    failures[seconds(10, 30)] = 10
    load = load_frame(requests, failures)
    assert math.isnan(ttr(load, 10.0))
    assert analysis.error_window(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(20.0)


def test_recovering_too_late_to_hold_a_full_slo_window_is_nan() -> None:
    requests, failures = steady()
    failures[seconds(10, 28)] = 10  # good again at 28 s, but only 2 s of a 3 s window remain
    assert math.isnan(ttr(load_frame(requests, failures), 10.0))


def test_never_dipping_is_zero_with_no_error_window() -> None:
    requests, failures = steady()
    load = load_frame(requests, failures)
    assert ttr(load, 10.0) == 0.0
    assert analysis.error_window(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == 0.0
    assert math.isnan(analysis.time_to_first_error(load, T0 + 10, T0 + DURATION, bucket=BUCKET))


def test_a_blip_within_the_slo_is_not_a_dip() -> None:
    requests, failures = steady(requests_per_bucket=100)
    failures[seconds(12, 12.1)] = 1  # 1 of 3000 requests in any 3 s window: 99.97 %
    load = load_frame(requests, failures)
    assert ttr(load, 10.0) == 0.0
    assert analysis.time_to_first_error(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(2.0)
    assert analysis.error_window(load, T0 + 10, T0 + DURATION, bucket=BUCKET) == pytest.approx(0.1)


def test_no_request_in_the_window_is_nan_everywhere() -> None:
    requests, failures = steady()
    requests[seconds(10, 30)] = 0
    load = load_frame(requests, failures)
    assert math.isnan(ttr(load, 10.0))
    assert math.isnan(analysis.error_window(load, T0 + 10, T0 + DURATION, bucket=BUCKET))
    assert math.isnan(analysis.availability(load, T0 + 10, T0 + DURATION, bucket=BUCKET))


# --- flapping around the SLO ------------------------------------------------------------


def test_flapping_counts_until_the_last_dip_and_exactly_the_slo_is_not_a_dip() -> None:
    requests, failures = steady(requests_per_bucket=100)
    failures[seconds(10, 11)] = 50  # half fail for 1 s
    # 11-13 s good (two full 1 s windows at or above the SLO), then one bad bucket:
    failures[seconds(13, 13.1)] = 20  # 20 of 1000 in its windows: 98 %, below 99 %
    failures[seconds(15, 15.1)] = 10  # 10 of 1000: exactly 99 %, at the SLO, not a dip
    load = load_frame(requests, failures)
    # Recovered = from the bucket after the last window below the SLO (the one starting at 13.0 s).
    assert ttr(load, 10.0, window=1.0) == pytest.approx(3.1)
    # Without the relapse at 13 s it would have recovered when the half-failing second ended.
    failures[seconds(13, 13.1)] = 0
    assert ttr(load_frame(requests, failures), 10.0, window=1.0) == pytest.approx(1.0)


# --- empty buckets ------------------------------------------------------------------------


def test_empty_buckets_are_gaps_not_failures() -> None:
    requests, failures = steady()
    requests[seconds(10, 12)] = 0  # the load generator sent nothing for 2 s
    load = load_frame(requests, failures)
    assert analysis.availability(load, T0, T0 + DURATION, bucket=BUCKET) == 1.0
    assert ttr(load, 10.0) == 0.0
    series = analysis.time_series(load, measure_start=T0, measure_end=T0 + DURATION, bucket=BUCKET)
    assert len(series) == 300
    gap = series[(series["t_s"] >= 10 - 1e-9) & (series["t_s"] < 12 - 1e-9)]
    assert len(gap) == 20 and gap["success_ratio"].isna().all() and gap["p99_ms"].isna().all()
    assert series["success_ratio"].drop(gap.index).eq(1.0).all()


def test_recovery_after_a_gap_is_dated_by_the_first_bucket_with_requests() -> None:
    requests, failures = steady()
    failures[seconds(10, 11)] = 10
    requests[seconds(11, 12)] = 0
    assert ttr(load_frame(requests, failures), 10.0) == pytest.approx(2.0)


# --- latency and throughput ---------------------------------------------------------------


def test_latency_of_identical_buckets_is_exact() -> None:
    requests, failures = steady()
    latency = analysis.latency_percentiles(load_frame(requests, failures, p50=5, p95=8, p99=12, top=20), T0, T0 + DURATION, bucket=BUCKET)
    assert (latency.p50_ms, latency.p95_ms, latency.p99_ms) == pytest.approx((5.0, 8.0, 12.0))


def test_latency_mixes_buckets_by_successful_requests() -> None:
    fast = load_frame(np.full(50, 10.0), p50=10, p95=10, p99=10, top=10)
    slow = load_frame(np.full(50, 10.0), p50=100, p95=100, p99=100, top=100)
    slow["ts"] += 5.0
    load = pd.concat([fast, slow], ignore_index=True)
    latency = analysis.latency_percentiles(load, T0, T0 + 10, bucket=BUCKET)
    # Half the requests took 10 ms and half 100 ms.
    assert (latency.p50_ms, latency.p95_ms, latency.p99_ms) == pytest.approx((10.0, 100.0, 100.0))
    # Failed requests carry no latency: slow buckets that mostly failed weigh little.
    slow_failing = slow.assign(failures=9.0, refused=9.0)
    mostly_fast = analysis.latency_percentiles(pd.concat([fast, slow_failing], ignore_index=True), T0, T0 + 10, bucket=BUCKET)
    assert mostly_fast.p50_ms == pytest.approx(10.0) and mostly_fast.p95_ms == pytest.approx(100.0)


def test_latency_with_no_success_is_nan() -> None:
    requests, _ = steady()
    latency = analysis.latency_percentiles(load_frame(requests, requests), T0, T0 + DURATION, bucket=BUCKET)
    assert math.isnan(latency.p50_ms) and math.isnan(latency.p99_ms)


def test_throughput_dip_of_a_full_outage_and_of_a_partial_one() -> None:
    requests, failures = steady()  # 10 per 100 ms: 100 successful requests/s
    failures[seconds(10, 12)] = 10
    dip = analysis.throughput_dip(load_frame(requests, failures), T0, T0 + 10, T0 + DURATION, bucket=BUCKET)
    assert (dip.before_rps, dip.min_rps, dip.dip) == pytest.approx((100.0, 0.0, 1.0))
    failures[seconds(10, 12)] = 4  # 60 % served for 2 s
    dip = analysis.throughput_dip(load_frame(requests, failures), T0, T0 + 10, T0 + DURATION, bucket=BUCKET)
    assert dip.dip == pytest.approx(0.4)


def test_failures_by_class_counts_each_class() -> None:
    requests, failures = steady()
    load = load_frame(requests, failures)
    load.loc[100:104, ["refused", "failures"]] = 10
    load.loc[105, ["reset", "failures"]] = 3
    counts = analysis.failures_by_class(load, T0, T0 + DURATION, bucket=BUCKET)
    assert counts == {"refused": 50, "reset": 3, "timeout": 0, "http_5xx": 0, "other": 0, "failed_requests": 53, "requests": 3000}


# --- cluster events ---------------------------------------------------------------------


def events_frame(rows: Sequence[tuple]) -> pd.DataFrame:
    """Rows of (seconds after T0, kind, name[, detail])."""
    records = []
    for row in rows:
        at, kind, name, *rest = row
        obj = "endpoint" if kind.startswith("endpoint") else "deployment" if kind == "scaled" else "pod"
        records.append({"ts": T0 + at, "kind": kind, "object": obj, "name": name, "node": "node-1", "reason": "", "detail": rest[0] if rest else ""})
    return pd.DataFrame(records, columns=list(EVENT_COLUMNS))


INITIAL = [(-5.0, "endpoint_added", "web-a"), (-5.0, "endpoint_added", "web-b"), (-5.0, "endpoint_added", "web-c")]


def test_capacity_recovers_when_ready_endpoints_are_back_to_desired() -> None:
    events = events_frame([*INITIAL, (10.05, "endpoint_removed", "web-a"), (12.5, "endpoint_added", "web-d")])
    endpoints = analysis.ready_endpoints(events, measure_start=T0, desired_replicas=3)
    assert analysis.capacity_recovered(endpoints, T0 + 10, T0 + DURATION) == pytest.approx(2.5)
    never = analysis.ready_endpoints(events.iloc[:-1], measure_start=T0, desired_replicas=3)
    assert math.isnan(analysis.capacity_recovered(never, T0 + 10, T0 + DURATION))
    untouched = analysis.ready_endpoints(events_frame(INITIAL), measure_start=T0, desired_replicas=3)
    assert analysis.capacity_recovered(untouched, T0 + 10, T0 + DURATION) == 0.0


def test_capacity_follows_scaled_events_and_a_late_recorder() -> None:
    scaled = events_frame([*INITIAL, (10.0, "scaled", "web", "replicas=4"), (12.0, "endpoint_added", "web-d")])
    endpoints = analysis.ready_endpoints(scaled, measure_start=T0, desired_replicas=3)
    assert analysis.capacity_recovered(endpoints, T0 + 10, T0 + DURATION) == pytest.approx(2.0)
    # No endpoint event before measuring began: the count starts at the desired replicas.
    late = events_frame([(10.05, "endpoint_removed", "web-a"), (13.0, "endpoint_added", "web-d")])
    endpoints = analysis.ready_endpoints(late, measure_start=T0, desired_replicas=3)
    assert list(endpoints["ready"]) == [3, 2, 3]
    assert analysis.capacity_recovered(endpoints, T0 + 10, T0 + DURATION) == pytest.approx(3.0)


def test_no_endpoint_events_means_capacity_unknown() -> None:
    endpoints = analysis.ready_endpoints(events_frame([(1.0, "pod_ready", "web-a")]), measure_start=T0, desired_replicas=3)
    assert math.isnan(analysis.capacity_recovered(endpoints, T0 + 10, T0 + DURATION))


REPLACEMENT = [
    (10.0, "pod_terminating", "web-a"),
    (10.01, "pod_deleted", "web-a"),
    (10.02, "pod_created", "web-d"),
    (10.05, "pod_scheduled", "web-d"),
    (10.55, "container_started", "web-d"),
    (12.05, "pod_ready", "web-d"),
    (12.10, "endpoint_added", "web-d"),
    (12.30, "endpoint_removed", "web-a"),  # propagated after the pod was gone
]


def test_recovery_phases_of_a_deleted_pod() -> None:
    phases = analysis.recovery_phases(events_frame(REPLACEMENT), fault_ts=T0 + 10, window_end=T0 + DURATION, action="pod-delete", targets=["web-a"])
    assert list(phases["pod"]) == ["web-d"] and list(phases["replaces"]) == ["web-a"]
    row = phases.iloc[0]
    expected = {"phase_create_s": 0.02, "phase_schedule_s": 0.03, "phase_start_s": 0.5, "phase_ready_s": 1.5, "phase_endpoint_s": 0.05, "phase_total_s": 2.1}
    assert {k: row[k] for k in expected} == pytest.approx(expected)


def test_recovery_phases_of_a_killed_container_restart_in_place() -> None:
    events = events_frame([(10.0, "container_died", "web-a"), (10.4, "container_started", "web-a"), (11.4, "pod_ready", "web-a"), (11.45, "endpoint_added", "web-a")])
    phases = analysis.recovery_phases(events, fault_ts=T0 + 10, window_end=T0 + DURATION, action="container-kill", targets=["web-a"])
    row = phases.iloc[0]
    assert math.isnan(row["phase_create_s"]) and math.isnan(row["phase_schedule_s"])
    assert (row["phase_start_s"], row["phase_ready_s"], row["phase_total_s"]) == pytest.approx((0.4, 1.0, 1.45))


def test_pod_states_ignore_events_of_a_deleted_pod() -> None:
    events = events_frame([(-5.0, "pod_ready", "web-a"), (-4.9, "endpoint_added", "web-a"), *REPLACEMENT])
    states = analysis.pod_states(events, T0 + 9, T0 + 14)
    old = states[states["pod"] == "web-a"]
    assert list(old["state"]) == ["serving", "terminating"]
    assert old["end_ts"].max() == pytest.approx(T0 + 10.01)
    new = states[states["pod"] == "web-d"]
    assert list(new["state"]) == ["scheduling", "starting", "warming up", "joining Service", "serving"]
    assert new["end_ts"].max() == pytest.approx(T0 + 14)


# --- whole trials and runs ---------------------------------------------------------------


def make_run(
    trials: Sequence[tuple[int, int, pd.DataFrame, pd.DataFrame, Sequence[float]]],
    *,
    status: str = "completed",
    recovery_budget: str | None = "10s",
    sweep: dict | None = None,
) -> RunData:
    """A run in memory: (point, trial, load, events, fault seconds) per trial."""
    experiment = Experiment.model_validate(
        {
            "name": "synthetic",
            "timeline": {"duration": f"{DURATION:g}s"},
            "faults": [{"at": "10s", "action": "pod-delete"}],
            "measure": {"bucket": "100ms", "slo": {"availability": "99%", "window": "3s"}, "recoveryBudget": recovery_budget},
            "sweep": sweep if sweep is not None else {"workload.replicas": [1, 3]},
        }
    )
    data = []
    for point, index, load, events, faults_at in trials:
        faults = pd.DataFrame(
            [
                {"fault_id": f"f{i + 1}", "action": "pod-delete", "scheduled_s": at, "ts": T0 + at, "targets": "web-a", "ready_before": 3, "ready_after": 2, "detail": ""}
                for i, at in enumerate(faults_at)
            ],
            columns=list(FAULT_COLUMNS),
        )
        params = {path: values[point - 1] for path, values in experiment.sweep.items()}
        data.append(
            TrialData(
                id=f"p{point:02d}-t{index}",
                point=point,
                trial=index,
                seed=index,
                params=params,
                info=TrialInfo(status=status, measure_start=T0, measure_end=T0 + DURATION, desired_replicas=3),
                load=load,
                events=events,
                faults=faults,
                probe=None,
                path=Path("/nonexistent"),
            )
        )
    return RunData(path=Path("/nonexistent"), journal={"status": status}, experiment=experiment, experiment_text="", trials=tuple(data))


def test_two_faults_in_one_trial_get_their_own_windows() -> None:
    requests, failures = steady(requests_per_bucket=100)
    failures[seconds(10, 11)] = 100
    failures[seconds(20, 23)] = 100
    run = make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0, 20.0])])
    summary = analysis.summary_table(run)
    assert list(summary["fault_id"]) == ["f1", "f2"]
    assert list(summary["fault_window_s"]) == pytest.approx([10.0, 10.0])
    assert list(summary["time_to_recover_s"]) == pytest.approx([1.0, 3.0])
    assert list(summary["error_window_s"]) == pytest.approx([1.0, 3.0])
    assert list(summary["fault_window_availability"]) == pytest.approx([0.9, 0.7])
    assert summary["availability"].tolist() == pytest.approx([26000 / 30000] * 2)
    assert summary["workload.replicas"].tolist() == [1, 1]


def test_a_fault_cut_short_by_the_next_one_never_recovered() -> None:
    requests, failures = steady()
    failures[seconds(10, 21)] = 10
    run = make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0, 20.0])])
    summary = analysis.summary_table(run)
    assert math.isnan(summary["time_to_recover_s"].iloc[0])
    assert summary["time_to_recover_s"].iloc[1] == pytest.approx(1.0)


def test_a_trial_without_faults_gets_one_row_with_empty_fault_columns() -> None:
    requests, failures = steady()
    run = make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [])])
    summary = analysis.summary_table(run)
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["availability"] == 1.0 and row["requests"] == 3000
    assert pd.isna(row["fault_id"]) and math.isnan(row["time_to_recover_s"]) and math.isnan(row["fault_s"])
    comparison = analysis.comparison_table(summary, ["workload.replicas"], np.random.default_rng(0))
    assert comparison["never_recovered"].iloc[0] == 0 and math.isnan(comparison["time_to_recover_s_median"].iloc[0])


def test_summary_has_the_contract_columns() -> None:
    requests, failures = steady()
    run = make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0])])
    summary = analysis.summary_table(run)
    required = [
        "trial", "point", "trial_index", "workload.replicas", "fault_id", "action", "fault_ts", "fault_s",
        "availability", "fault_window_availability", "time_to_first_error_s", "error_window_s", "time_to_recover_s",
        "capacity_recovered_s", "requests", "failed_requests", "refused", "reset", "timeout", "http_5xx", "other",
        "p50_ms", "p95_ms", "p99_ms", "p99_ms_during", "throughput_dip", "status", *analysis.PHASE_COLUMNS,
    ]  # fmt: skip
    assert [c for c in required if c not in summary.columns] == []


# --- across trials ----------------------------------------------------------------------


def test_a_single_trial_has_no_confidence_interval() -> None:
    result = analysis.aggregate([2.5], np.random.default_rng(1))
    assert (result.n, result.median, result.min, result.max) == (1, 2.5, 2.5, 2.5)
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high)


def test_bootstrap_ci_contains_the_median_and_is_deterministic_for_a_seed() -> None:
    values = [1.2, 3.4, 2.2, 5.0, 2.9, 3.1, 2.6]
    first = analysis.aggregate(values, np.random.default_rng(7))
    again = analysis.aggregate(values, np.random.default_rng(7))
    assert first == again
    assert first.median == pytest.approx(2.9)
    assert first.ci_low <= first.median <= first.ci_high
    assert first.min <= first.ci_low and first.ci_high <= first.max
    assert first.ci_low < first.ci_high


def test_never_recovered_ranks_as_the_slowest_trial() -> None:
    result = analysis.aggregate([1.0, 2.0, math.nan], np.random.default_rng(3), never_is_worst=True)
    assert (result.n, result.median, result.min) == (3, 2.0, 1.0)
    assert math.isnan(result.max)  # the slowest trial never recovered
    ignoring = analysis.aggregate([1.0, 2.0, math.nan], np.random.default_rng(3))
    assert (ignoring.n, ignoring.median) == (2, 1.5)


def test_comparison_aggregates_each_sweep_point_across_trials() -> None:
    outage = [1.0, 2.0, 3.0]
    trials = []
    for index, length in enumerate(outage, start=1):
        requests, failures = steady()
        failures[seconds(10, 10 + length)] = 10
        trials.append((1, index, load_frame(requests, failures), events_frame(INITIAL), [10.0]))
    requests, failures = steady()
    failures[seconds(10, 30)] = 10  # point 2, trial 1 never recovers
    trials.append((2, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0]))
    trials.append((2, 2, load_frame(*steady()), events_frame(INITIAL), [10.0]))
    summary = analysis.summary_table(make_run(trials))
    comparison = analysis.comparison_table(summary, ["workload.replicas"], np.random.default_rng(11))
    first, second = comparison.iloc[0], comparison.iloc[1]
    assert (first["label"], first["trials"], first["never_recovered"]) == ("replicas=1", 3, 0)
    assert (first["time_to_recover_s_median"], first["time_to_recover_s_min"], first["time_to_recover_s_max"]) == pytest.approx((2.0, 1.0, 3.0))
    assert first["time_to_recover_s_ci_low"] <= 2.0 <= first["time_to_recover_s_ci_high"]
    assert (second["trials"], second["never_recovered"]) == (2, 1)
    assert second["time_to_recover_s_min"] == 0.0 and math.isnan(second["time_to_recover_s_max"])
    again = analysis.comparison_table(summary, ["workload.replicas"], np.random.default_rng(11))
    pd.testing.assert_frame_equal(comparison, again)


def test_representative_trial_is_the_median_availability() -> None:
    trials = []
    for index, length in enumerate([3.0, 1.0, 2.0, 0.5], start=1):
        requests, failures = steady()
        failures[seconds(10, 10 + length)] = 10
        trials.append((1, index, load_frame(requests, failures), events_frame(INITIAL), [10.0]))
    summary = analysis.summary_table(make_run(trials))
    # Availabilities rank t1 < t3 < t2 < t4; of the two middle ones, the worse (t3).
    assert analysis.representative_trials(summary) == {"replicas=1": "p01-t3"}


# --- the verdict ------------------------------------------------------------------------


def test_verdict_names_what_missed() -> None:
    requests, failures = steady()
    failures[seconds(10, 30)] = 10
    run = make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0]), (2, 1, load_frame(*steady()), events_frame(INITIAL), [10.0])])
    result = analysis.verdict(analysis.summary_table(run), run.experiment.measure)
    assert not result.passed
    assert any(r.startswith("p01-t1: availability 33.33% below the SLO 99%") for r in result.reasons)
    assert any(r.startswith("p01-t1 f1") and "never recovered" in r for r in result.reasons)
    assert not any(r.startswith("p02") for r in result.reasons)


def test_verdict_recovery_budget() -> None:
    requests, failures = steady(requests_per_bucket=1000)
    failures[seconds(10, 10.2)] = 1000  # 2000 of 300000 fail: availability 99.3 %, above the SLO
    summary = analysis.summary_table(make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0])]))
    assert summary["time_to_recover_s"].iloc[0] == pytest.approx(0.2)
    assert analysis.verdict(summary, MeasureSpec(recovery_budget=1.0)) == analysis.Verdict(True, ())
    missed = analysis.verdict(summary, MeasureSpec(recovery_budget=0.1))
    assert not missed.passed and "over the recovery budget 0.1s" in missed.reasons[0]
    # Without a budget, only availability is judged.
    assert analysis.verdict(summary, MeasureSpec(recovery_budget=None)).passed


def test_verdict_tells_a_silent_fault_window_from_a_dip_that_never_ended() -> None:
    requests, failures = steady()
    requests[seconds(10, 30)] = 0  # nothing completes after the fault: requests hung
    failures[seconds(10, 30)] = 0
    summary = analysis.summary_table(make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0])]))
    assert math.isnan(summary["time_to_recover_s"].iloc[0])
    result = analysis.verdict(summary, MeasureSpec(recovery_budget=5.0))
    (reason,) = [r for r in result.reasons if r.startswith("p01-t1 f1")]
    assert not result.passed
    assert "no request completed in its 20.0s fault window" in reason and "never recovered" not in reason


def test_verdict_judges_only_completed_trials() -> None:
    requests, failures = steady()
    failures[seconds(10, 30)] = 10
    run = make_run([(1, 1, load_frame(requests, failures), events_frame(INITIAL), [10.0])], status="aborted")
    result = analysis.verdict(analysis.summary_table(run), run.experiment.measure)
    assert not result.passed and result.reasons == ("no trial completed, so nothing could be judged",)


def test_point_labels_are_short_and_unambiguous() -> None:
    assert analysis.point_label({"workload.replicas": 3}, ["workload.replicas"]) == "replicas=3"
    paths = ["workload.readinessProbe.periodSeconds", "workload.livenessProbe.periodSeconds"]
    label = analysis.point_label(dict(zip(paths, [5, 10])), paths)
    assert label == "workload.readinessProbe.periodSeconds=5, workload.livenessProbe.periodSeconds=10"
    assert analysis.point_label({}, []) == "all trials"
    # Structured sweep values read like the YAML that set them, not like Python reprs.
    pdb = "workload.podDisruptionBudget"
    assert analysis.point_label({pdb: {"minAvailable": 1}}, [pdb]) == "podDisruptionBudget={minAvailable: 1}"
    assert analysis.point_label({pdb: None}, [pdb]) == "podDisruptionBudget=none"


# --- a dip in the load itself (issue 11) -------------------------------------------------


def _paused_load() -> tuple[np.ndarray, np.ndarray]:
    """30 requests/s, then for 1.5 s from 12 s only 7/s sent, all served: the clients paused."""
    requests = np.tile([3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0], round(DURATION))
    requests[seconds(12, 13.5)] = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    return requests, np.zeros_like(requests)


def test_the_dip_records_what_the_clients_sent_failed_and_waited_for_in_its_lowest_second() -> None:
    requests, failures = _paused_load()
    dip = analysis.throughput_dip(load_frame(requests, failures, top=26.0), T0, T0 + 10, T0 + DURATION, bucket=BUCKET)
    assert dip.before_rps == pytest.approx(30.0)
    assert dip.min_rps == pytest.approx(dip.sent_at_min_rps)  # all that was sent was served
    assert dip.min_rps < 10 and dip.failed_at_min == 0 and dip.slowest_at_min_ms == pytest.approx(26.0)
    assert analysis.dip_in_the_load(dip.dip, dip.failed_at_min, dip.slowest_at_min_ms)


def test_a_dip_with_failures_or_clients_held_by_the_service_is_not_put_down_to_the_load() -> None:
    requests, failures = _paused_load()
    failures[seconds(11.5, 11.6)] = 1  # one failure in the second before the lowest one
    dip = analysis.throughput_dip(load_frame(requests, failures), T0, T0 + 10, T0 + DURATION, bucket=BUCKET)
    assert dip.failed_at_min == 1
    assert not analysis.dip_in_the_load(dip.dip, dip.failed_at_min, dip.slowest_at_min_ms)
    # Every request took 900 ms: users waited on the service, they did not pause.
    requests, failures = _paused_load()
    held = analysis.throughput_dip(load_frame(requests, failures, top=900.0), T0, T0 + 10, T0 + DURATION, bucket=BUCKET)
    assert held.slowest_at_min_ms == pytest.approx(900.0)
    assert not analysis.dip_in_the_load(held.dip, held.failed_at_min, held.slowest_at_min_ms)
    # A shallow dip says nothing either way.
    assert not analysis.dip_in_the_load(0.1, 0.0, 5.0)
    assert not analysis.dip_in_the_load(float("nan"), 0.0, 5.0)


def test_the_summary_notes_a_dip_in_the_load_with_its_numbers_beside_the_dip() -> None:
    requests, failures = _paused_load()
    paused = load_frame(requests, failures, top=26.0)
    outage_requests, outage_failures = steady(3)
    outage_failures[seconds(12, 13)] = 3
    outage = load_frame(outage_requests, outage_failures)
    no_events = events_frame([])
    run = make_run([(1, 1, paused, no_events, [10.0]), (2, 1, outage, no_events, [10.0])])
    summary = analysis.summary_table(run)
    (note,) = analysis.throughput_dip_notes(summary)
    assert note.startswith("replicas=1: the throughput dip is the load pausing, not the service (1 of 1 trial)")
    row = summary.iloc[0]
    assert f"to {row['throughput_min_rps']:.0f}/s ({row['throughput_dip']:.0%})" in note
    assert f"sent only {row['throughput_sent_at_min_rps']:.0f} requests/s" in note and "26 ms" in note
    assert summary.iloc[1]["throughput_dip"] == pytest.approx(1.0)  # the outage: no note for it
