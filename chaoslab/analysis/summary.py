"""summary.csv: every metric of one trial, per fault, assembled from the definitions.

This module defines no metric of its own; it decides the windows (measurement, each
fault's, before/during/after) and calls the definition modules, so summary.csv's columns
and the functions that define them stay side by side in `summary_table`'s docstring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from chaoslab.analysis.autoscale import (
    AUTOSCALE_COLUMNS,
    first_scale_up,
    load_spike,
    predicted_first_scale_up,
    scale_events,
    time_to_capacity,
)
from chaoslab.analysis.buckets import Buckets, _ratio
from chaoslab.analysis.capacity import capacity_recovered, ready_endpoints
from chaoslab.analysis.integrity import identity_outcome, trial_integrity
from chaoslab.analysis.latency import Latency, _latency
from chaoslab.analysis.pods import PHASE_COLUMNS, PodEvents, _recovery_phases
from chaoslab.analysis.service import (
    _availability,
    _error_window,
    _failures_by_class,
    _time_to_first_error,
    _time_to_recover,
)
from chaoslab.analysis.throughput import _throughput_dip
from chaoslab.results import FAILURE_CLASSES, RunData, TrialData
from chaoslab.spec import MeasureSpec

# summary.csv, in order; the sweep parameters and `label` follow `trial_index`.
SUMMARY_LEAD_COLUMNS = ("trial", "point", "trial_index")
SUMMARY_COLUMNS = (
    "label",
    "fault_id",
    "action",
    "targets",
    "fault_ts",
    "fault_s",
    "fault_window_s",
    "availability",
    "fault_window_availability",
    "time_to_first_error_s",
    "error_window_s",
    "time_to_recover_s",
    "capacity_recovered_s",
    "requests",
    "failed_requests",
    *FAILURE_CLASSES,
    "fault_window_requests",
    "fault_window_failed_requests",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "p50_ms_before",
    "p95_ms_before",
    "p99_ms_before",
    "p50_ms_during",
    "p95_ms_during",
    "p99_ms_during",
    "p50_ms_after",
    "p95_ms_after",
    "p99_ms_after",
    "throughput_before_rps",
    "throughput_min_rps",
    "throughput_dip",
    "throughput_sent_at_min_rps",
    "throughput_failed_at_min",
    "throughput_slowest_at_min_ms",
    "desired_replicas",
    "replacement_pod",
    *PHASE_COLUMNS,
    *AUTOSCALE_COLUMNS,
    # load.dataIntegrity only (integrity.py); NaN otherwise
    "acknowledged_writes",
    "lost_writes",
    "stale_reads",
    "identity_kept",
    "time_to_same_identity_s",
    "status",
)


def measurement_window(trial: TrialData, duration: float, bucket: float) -> tuple[float, float] | None:
    """`(measure_start, measure_end)` of a trial, epoch seconds; None if measuring never began.

    A trial that stopped early (aborted, failed) may have no `measure_end`: it then ends at
    the last load bucket, but never later than the planned `measure_start + duration`.
    """
    start = trial.info.measure_start
    if start is None:
        return None
    end = trial.info.measure_end
    if end is None:
        ts = pd.to_numeric(trial.load["ts"], errors="coerce") if len(trial.load) else pd.Series(dtype=float)
        last = float(ts.max()) + bucket if len(ts.dropna()) else float(start)
        end = min(float(start) + duration, last)
    return float(start), float(end)


def fault_windows(faults: pd.DataFrame, measure_start: float, measure_end: float) -> pd.DataFrame:
    """One row per fault injection with its window: fault_id, action, targets, fault_ts, window_end.

    A fault's window ends at the next injection that happened later, or at the end of the
    measurement. Sorted by injection time.
    """
    columns = ["fault_id", "action", "targets", "fault_ts", "window_end"]
    if not len(faults):
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "fault_id": faults["fault_id"].astype(str).to_numpy(),
            "action": faults["action"].astype(str).to_numpy(),
            "targets": faults["targets"].fillna("").astype(str).to_numpy(),
            "fault_ts": pd.to_numeric(faults["ts"], errors="coerce").to_numpy(dtype=float),
        }
    ).sort_values("fault_ts", kind="stable")
    times = frame["fault_ts"].to_numpy()
    distinct = np.unique(times[~np.isnan(times)])
    if len(distinct):
        nxt = np.searchsorted(distinct, times, side="right")
        ends = np.where(nxt < len(distinct), distinct[np.minimum(nxt, len(distinct) - 1)], measure_end)
    else:
        ends = np.full(len(times), measure_end)
    frame["window_end"] = np.minimum(np.where(np.isnan(times), np.nan, ends), measure_end)
    return frame.reset_index(drop=True)


def trial_summary(trial: TrialData, run: RunData) -> list[dict[str, Any]]:
    """The summary rows of one trial: one per fault, or one with empty fault columns."""
    experiment = run.experiment
    measure = experiment.measure
    bucket = measure.bucket
    base: dict[str, Any] = {
        "trial": trial.id,
        "point": trial.point,
        "trial_index": trial.trial,
        **{path: trial.params.get(path) for path in _param_paths(run)},
        "label": point_label(trial.params, run.sweep_paths),
        "status": trial.info.status,
        "desired_replicas": trial.info.desired_replicas,
    }
    window = measurement_window(trial, experiment.timeline.duration, bucket)
    if window is None:
        return [base]
    measure_start, measure_end = window
    buckets = Buckets.from_frame(trial.load, bucket)
    latency = _latency(buckets, measure_start, measure_end)
    base.update(
        **trial_integrity(trial.integrity),
        availability=_availability(buckets, measure_start, measure_end),
        **_failures_by_class(buckets, measure_start, measure_end),
        p50_ms=latency.p50_ms,
        p95_ms=latency.p95_ms,
        p99_ms=latency.p99_ms,
    )
    endpoints = ready_endpoints(
        trial.events, measure_start=measure_start, desired_replicas=trial.info.desired_replicas, faults=trial.faults
    )
    base.update(_autoscale_metrics(trial, run, buckets, endpoints, measure_start, measure_end))
    windows = fault_windows(trial.faults, measure_start, measure_end)
    if not len(windows):
        return [base]
    pod_events = PodEvents.from_frame(trial.events)
    rows = []
    previous_ts = measure_start
    for fault in windows.itertuples(index=False):
        row = dict(base)
        row.update(_fault_metrics(buckets, endpoints, pod_events, fault, previous_ts, measure_start, measure))
        if trial.integrity is not None and not math.isnan(fault.fault_ts):
            identity = identity_outcome(trial.integrity, float(fault.fault_ts), float(fault.window_end))
            row.update(identity_kept=identity.identity_kept, time_to_same_identity_s=identity.time_to_same_identity_s)
        rows.append(row)
        if not math.isnan(fault.fault_ts):
            previous_ts = max(previous_ts, fault.fault_ts)
    return rows


def _fault_metrics(
    buckets: Buckets,
    endpoints: pd.DataFrame,
    pod_events: PodEvents,
    fault: Any,
    before_start: float,
    measure_start: float,
    measure: MeasureSpec,
) -> dict[str, Any]:
    fault_ts, end = float(fault.fault_ts), float(fault.window_end)
    row: dict[str, Any] = {
        "fault_id": fault.fault_id,
        "action": fault.action,
        "targets": fault.targets,
        "fault_ts": fault_ts,
        "fault_s": fault_ts - measure_start,
        "fault_window_s": end - fault_ts,
    }
    if math.isnan(fault_ts) or not end > fault_ts:
        return row
    slo = measure.slo
    window = buckets.window(fault_ts, end)
    recover = _time_to_recover(buckets, fault_ts, end, slo.availability, slo.window)
    capacity = capacity_recovered(endpoints, fault_ts, end)
    # "During" lasts until service and capacity are both back (at least one SLO window);
    # if service never recovered, the whole fault window.
    if math.isnan(recover):
        during_end = end
    else:
        settled = max(slo.window, recover, 0.0 if math.isnan(capacity) else capacity)
        during_end = min(end, fault_ts + settled)
    before = _latency(buckets, before_start, fault_ts)
    during = _latency(buckets, fault_ts, during_end)
    after = _latency(buckets, during_end, end) if during_end < end else Latency(math.nan, math.nan, math.nan)
    dip = _throughput_dip(buckets, before_start, fault_ts, end)
    phases = _recovery_phases(pod_events, fault_ts, end, fault.action, fault.targets.split(";"))
    row.update(
        fault_window_availability=_ratio(buckets.successes[window].sum(), buckets.requests[window].sum()),
        time_to_first_error_s=_time_to_first_error(buckets, fault_ts, end),
        error_window_s=_error_window(buckets, fault_ts, end),
        time_to_recover_s=recover,
        capacity_recovered_s=capacity,
        fault_window_requests=int(buckets.requests[window].sum()),
        fault_window_failed_requests=int(buckets.failures[window].sum()),
        p50_ms_before=before.p50_ms,
        p95_ms_before=before.p95_ms,
        p99_ms_before=before.p99_ms,
        p50_ms_during=during.p50_ms,
        p95_ms_during=during.p95_ms,
        p99_ms_during=during.p99_ms,
        p50_ms_after=after.p50_ms,
        p95_ms_after=after.p95_ms,
        p99_ms_after=after.p99_ms,
        throughput_before_rps=dip.before_rps,
        throughput_min_rps=dip.min_rps,
        throughput_dip=dip.dip,
        throughput_sent_at_min_rps=dip.sent_at_min_rps,
        throughput_failed_at_min=dip.failed_at_min,
        throughput_slowest_at_min_ms=dip.slowest_at_min_ms,
    )
    if len(phases):
        # The fault is over when its last pod is back: report that pod's phases.
        slowest = phases["phase_total_s"].fillna(math.inf).idxmax()
        row["replacement_pod"] = phases.at[slowest, "pod"]
        row.update({column: float(phases.at[slowest, column]) for column in PHASE_COLUMNS})
    return row


def _param_paths(run: RunData) -> list[str]:
    paths = list(run.sweep_paths)
    for trial in run.trials:
        paths.extend(p for p in trial.params if p not in paths)
    return paths


def point_label(params: Mapping[str, Any], sweep_paths: Sequence[str]) -> str:
    """A short, readable name of a sweep point: `replicas=3`, `replicas=3, periodSeconds=5`.

    Uses the last segment of each swept path (the whole path when two share a last segment).
    Without a sweep: `all trials`.
    """
    if not sweep_paths:
        return "all trials"
    leaves = [path.rsplit(".", 1)[-1] for path in sweep_paths]
    names = [path if leaves.count(leaf) > 1 else leaf for path, leaf in zip(sweep_paths, leaves)]
    return ", ".join(f"{name}={_format_value(params.get(path))}" for name, path in zip(names, sweep_paths))


def _format_value(value: Any) -> str:
    """A sweep value as a person wrote it: `1`, `0.5`, `none`, `{minAvailable: 1}`, `[1, 2]`."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def summary_table(run: RunData) -> pd.DataFrame:
    """summary.csv: one row per trial x fault (a trial without faults: one row, fault columns NaN).

    Columns: trial (id), point, trial_index, one column per sweep parameter (dotted path),
    label (`point_label`), then for the fault: fault_id, action, targets, fault_ts (epoch s),
    fault_s (s after measure start), fault_window_s (its window's length); and the metrics:

    - availability: successful / completed requests over the measurement window (`availability`).
    - fault_window_availability: the same over the fault window.
    - time_to_first_error_s, error_window_s, time_to_recover_s: see those functions.
    - capacity_recovered_s: see `capacity_recovered`.
    - requests, failed_requests, refused, reset, timeout, http_5xx, other: counts over the
      measurement window; fault_window_requests, fault_window_failed_requests: over the fault window.
    - p50_ms, p95_ms, p99_ms: latency of successful requests over the measurement window;
      p*_ms_before (from the previous fault or measure start to the fault), p*_ms_during
      (from the fault until both time to recover and capacity recovery have passed, at
      least one SLO window; the whole fault window if it never recovered), p*_ms_after
      (the rest of the fault window). See `latency_percentiles` for the approximation.
    - throughput_before_rps, throughput_min_rps, throughput_dip: see `throughput_dip`;
      throughput_sent_at_min_rps, throughput_failed_at_min, throughput_slowest_at_min_ms:
      what the clients did in the dip's lowest second (`ThroughputDip`).
    - desired_replicas, replacement_pod and phase_*_s: the pod that came back last and its
      recovery phases (see `recovery_phases`).
    - acknowledged_writes, lost_writes, stale_reads (over the trial) and identity_kept,
      time_to_same_identity_s (per fault): the data-integrity users' record, see
      `acknowledged_writes`, `lost_writes`, `stale_reads` and `identity_outcome`
      (integrity.py); NaN without load.dataIntegrity.
    - status: the trial's status (completed, failed, aborted, running).
    """
    rows = [row for trial in run.trials for row in trial_summary(trial, run)]
    columns = [*SUMMARY_LEAD_COLUMNS, *_param_paths(run), *SUMMARY_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    numeric = [c for c in SUMMARY_COLUMNS if c not in ("label", "fault_id", "action", "targets", "replacement_pod", "status")]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    return frame

# --- autoscaling and load stages (definitions in autoscale.py) -------------------


def _autoscale_metrics(
    trial: TrialData, run: RunData, buckets: Buckets, endpoints: pd.DataFrame, measure_start: float, measure_end: float
) -> dict[str, Any]:
    """The spike and the autoscaler's answer to it, for summary.csv.

    spike_s, spike_users: when the largest rise of `load.stages` starts (s after measure
    start) and its users (`load_spike`); the spike window runs to the end of that stage.
    first_scale_up_s: from the spike to the HPA's first scale-up (`first_scale_up`);
    time_to_capacity_s: from the spike until ready endpoints reach the most replicas the
    HPA set in the spike window (`time_to_capacity`); peak_replicas: the most replicas
    the HPA set in the whole trial (NaN without an HPA, or if it never changed them);
    predicted_first_scale_up_s: the algorithm's bound for the first scale-up from its
    timings (`predicted_first_scale_up`); spike_availability, spike_failed_requests,
    p95_ms_spike: over the spike window. All NaN without stages that rise.
    """
    experiment = run.experiment
    row: dict[str, Any] = {}
    scaled = scale_events(trial.events)
    if len(scaled):
        row["peak_replicas"] = float(scaled["replicas"].max())
    spike = load_spike(experiment)
    if spike is None:
        return row
    start = measure_start + spike.start_s
    end = min(measure_start + spike.end_s, measure_end)
    if not end > start:
        return row
    timings = experiment.cluster.sim.timings
    window = buckets.window(start, end)
    latency = _latency(buckets, start, end)
    row.update(
        spike_s=spike.start_s,
        spike_users=spike.users,
        first_scale_up_s=first_scale_up(trial.events, start, end),
        time_to_capacity_s=time_to_capacity(endpoints, trial.events, start, end),
        spike_availability=_availability(buckets, start, end),
        spike_failed_requests=float(buckets.failures[window].sum()),
        p95_ms_spike=latency.p95_ms,
    )
    if experiment.workload.autoscaling is not None and experiment.cluster.backend == "sim":
        row["predicted_first_scale_up_s"] = predicted_first_scale_up(timings.metrics_resolution, timings.hpa_sync_period)
    return row
