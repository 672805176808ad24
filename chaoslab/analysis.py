"""What a run means in numbers: availability, error windows, recovery, latency, and trials aggregated.

Every definition a report states lives here, once, as a pure function over the pandas frames
of the results contract (docs/results.md): no I/O, no cluster, no plotting. A chart or a
table that says "time to recover" calls the function whose docstring defines it, so a
number on a slide can always be traced to one paragraph of code.

Conventions shared by every function:

- Times are wall-clock epoch seconds (`ts`) in, seconds (`*_s`) or milliseconds (`*_ms`) out.
- A load bucket covers `[ts, ts + bucket)`. A bucket belongs to a time window `(a, b]` by its
  END: `a < ts + bucket <= b`. Windows that share a boundary therefore partition the buckets
  (none is counted twice), and the bucket in which a fault fires belongs to that fault's
  window (its requests may have been hurt by the fault).
- Resolution is one bucket: a time measured from buckets is exact to `measure.bucket`.
- Missing is NaN, never 0. Where 0 is a real answer ("never dipped") the docstring says so.
- A *fault window* runs from a fault's injection to the next injection (of any fault) or to
  the end of the measurement, so a trial's fault windows partition its measurement window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Autoscaling definitions live in their own module and are re-exported from here, the
# one place a report's metrics are looked up.
from chaoslab.analysis_autoscale import (  # noqa: F401
    AUTOSCALE_COLUMNS,
    expected_replicas,
    first_scale_up,
    load_spike,
    load_steps,
    predicted_first_scale_up,
    scale_events,
    time_to_capacity,
)
from chaoslab.analysis_data import *  # noqa: F403 - the data metrics, defined there (see its docstring)
from chaoslab.analysis_data import identity_outcome, trial_integrity
from chaoslab.cluster.base import EventKind
from chaoslab.results import FAILURE_CLASSES, RunData, TrialData
from chaoslab.spec import MeasureSpec

# Throughput is smoothed over 1 s before its dip is measured: long enough to average out
# the noise of 100 ms buckets (a handful of requests each), short enough that a 2-3 s
# outage still shows its full depth.
THROUGHPUT_SMOOTHING_S = 1.0
# A throughput dip is put down to the load itself (`dip_in_the_load`) only when it is
# deep enough to matter (a fifth of the throughput: shallower dips are the noise of a
# few dozen requests per second) and no request in flight during its lowest second took
# longer than a tenth of that second: clients held that briefly were not kept from
# sending by the service.
LOAD_PACED_MIN_DIP = 0.2
LOAD_PACED_MAX_IN_FLIGHT_MS = 100.0
# Bootstrap resamples for the 95 % confidence interval of a median: 2000 gives CI bounds
# stable to well under the spread of a handful of trials, in a few milliseconds.
BOOTSTRAP_RESAMPLES = 2000
# Two-sided 95 % interval.
CI_LEVEL = 0.95
# Ratios are compared with the SLO with this slack, so 99/100 counts as "at 99 %" even
# after floating-point rounding.
_RATIO_EPSILON = 1e-12

# The recovery phases of a pod fault, in order, as columns of the summary table.
PHASE_COLUMNS = (
    "phase_create_s",
    "phase_schedule_s",
    "phase_start_s",
    "phase_ready_s",
    "phase_endpoint_s",
    "phase_total_s",
)

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
    # load.dataIntegrity only (analysis_data.py); NaN otherwise
    "acknowledged_writes",
    "lost_writes",
    "stale_reads",
    "identity_kept",
    "time_to_same_identity_s",
    "status",
)

# comparison.csv aggregates these per sweep point. For a trial with several faults, the
# fault metrics are first reduced to the trial's worst fault (see `trial_outcomes`).
COMPARISON_METRICS = (
    "availability",
    "fault_window_availability",
    "time_to_first_error_s",
    "error_window_s",
    "time_to_recover_s",
    "capacity_recovered_s",
    "failed_requests",
    "p99_ms",
    "p99_ms_during",
    "throughput_dip",
    "first_scale_up_s",
    "time_to_capacity_s",
    "peak_replicas",
    "p95_ms_spike",
    "spike_failed_requests",
    "acknowledged_writes",
    "lost_writes",
)
# For these a NaN means "never recovered": it ranks as the worst value (+inf) when trials
# are aggregated, so one trial that never recovered cannot make the median look better.
NEVER_IS_WORST = frozenset({"time_to_recover_s", "capacity_recovered_s"})
# How the worst fault of a trial is chosen, per metric.
_WORST_OF_TRIAL = {
    "fault_window_availability": "min",
    "time_to_first_error_s": "min",
    "error_window_s": "max",
    "time_to_recover_s": "max",
    "capacity_recovered_s": "max",
    "p99_ms_during": "max",
    "throughput_dip": "max",
}

_POD_EVENT_KINDS = frozenset(
    {
        EventKind.POD_CREATED.value,
        EventKind.POD_PENDING.value,
        EventKind.POD_SCHEDULED.value,
        EventKind.CONTAINER_STARTED.value,
        EventKind.CONTAINER_DIED.value,
        EventKind.CONTAINER_RESTARTED.value,
        EventKind.BACK_OFF.value,
        EventKind.POD_READY.value,
        EventKind.POD_NOT_READY.value,
        EventKind.POD_TERMINATING.value,
        EventKind.POD_DELETED.value,
        EventKind.POD_EVICTED.value,
        EventKind.ENDPOINT_ADDED.value,
        EventKind.ENDPOINT_REMOVED.value,
    }
)
_REPLICAS_DETAIL = re.compile(r"(?:^|[\s,;])replicas=(\d+)")


# --- load buckets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Buckets:
    """load.csv as numpy arrays, sorted by time: what every load metric reads.

    Built once per trial by `Buckets.from_frame`; the public functions below accept the
    load frame itself and build this on the fly.
    """

    bucket: float
    ts: np.ndarray
    requests: np.ndarray
    successes: np.ndarray
    failures: np.ndarray
    classes: Mapping[str, np.ndarray]
    p50: np.ndarray
    p95: np.ndarray
    p99: np.ndarray
    max: np.ndarray

    @staticmethod
    def from_frame(load: pd.DataFrame, bucket: float) -> Buckets:
        """Numeric, sorted arrays from a load frame (missing counts are 0, latencies NaN)."""
        if bucket <= 0:
            raise ValueError(f"bucket must be positive, got {bucket!r}")
        fills = {"ts": np.nan, "requests": 0.0, "failures": np.nan, "p50_ms": np.nan, "p95_ms": np.nan, "p99_ms": np.nan, "max_ms": np.nan}
        fills.update({name: 0.0 for name in FAILURE_CLASSES})
        arrays = {name: _numeric(load, name, fill) for name, fill in fills.items()}
        keep = ~np.isnan(arrays["ts"])
        if not keep.all():
            arrays = {name: values[keep] for name, values in arrays.items()}
        if not _is_sorted(arrays["ts"]):
            order = np.argsort(arrays["ts"], kind="stable")
            arrays = {name: values[order] for name, values in arrays.items()}
        requests = arrays["requests"]
        classes = {name: arrays[name] for name in FAILURE_CLASSES}
        class_sum = np.sum([classes[name] for name in FAILURE_CLASSES], axis=0) if len(requests) else np.zeros(0)
        failures = np.where(np.isnan(arrays["failures"]), class_sum, arrays["failures"])
        failures = np.clip(failures, 0.0, requests)
        return Buckets(
            bucket=float(bucket),
            ts=arrays["ts"],
            requests=requests,
            successes=requests - failures,
            failures=failures,
            classes=classes,
            p50=arrays["p50_ms"],
            p95=arrays["p95_ms"],
            p99=arrays["p99_ms"],
            max=arrays["max_ms"],
        )

    def window(self, start: float, end: float) -> slice:
        """The buckets whose END lies in `(start, end]` (see the module docstring)."""
        # Bucket ends are sums of floats near 1.8e9 (one ulp is ~2.4e-7 s): compare with a
        # tolerance well above that and far below one bucket.
        slack = self.bucket * 1e-3
        ends = self.ts + self.bucket
        lo = int(np.searchsorted(ends, start + slack, side="right"))
        hi = int(np.searchsorted(ends, end + slack, side="right"))
        return slice(lo, max(lo, hi))

    def __len__(self) -> int:
        return len(self.ts)


def _numeric(frame: pd.DataFrame, column: str, fill: float) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), fill, dtype=float)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if not math.isnan(fill):
        values = np.where(np.isnan(values), fill, values)
    return values


def _is_sorted(values: np.ndarray) -> bool:
    return bool(np.all(values[1:] >= values[:-1])) if len(values) > 1 else True


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else math.nan


def availability(load: pd.DataFrame, start: float, end: float, *, bucket: float) -> float:
    """Availability over `(start, end]`: successful / completed requests, a fraction in [0, 1].

    Completed requests are those that got an answer or failed (refused, reset, timeout,
    5xx, other) in buckets ending within the window. NaN when no request completed.
    """
    return _availability(Buckets.from_frame(load, bucket), start, end)


def _availability(buckets: Buckets, start: float, end: float) -> float:
    window = buckets.window(start, end)
    return _ratio(buckets.successes[window].sum(), buckets.requests[window].sum())


def failures_by_class(load: pd.DataFrame, start: float, end: float, *, bucket: float) -> dict[str, int]:
    """Failed requests in `(start, end]` per error class (counts), plus `failed_requests` and `requests`.

    Classes are those of load.csv: refused, reset, timeout, http_5xx, other.
    """
    return _failures_by_class(Buckets.from_frame(load, bucket), start, end)


def _failures_by_class(buckets: Buckets, start: float, end: float) -> dict[str, int]:
    window = buckets.window(start, end)
    counts = {name: int(buckets.classes[name][window].sum()) for name in FAILURE_CLASSES}
    counts["failed_requests"] = int(buckets.failures[window].sum())
    counts["requests"] = int(buckets.requests[window].sum())
    return counts


def time_to_first_error(load: pd.DataFrame, fault_ts: float, window_end: float, *, bucket: float) -> float:
    """Seconds from the fault to the start of the first bucket with a failed request.

    Looks at the fault window `(fault_ts, window_end]`; the bucket the fault fired in
    counts from the fault itself (0 s). NaN when no request failed in the window (or none
    completed): there was no first error.
    """
    return _time_to_first_error(Buckets.from_frame(load, bucket), fault_ts, window_end)


def _time_to_first_error(buckets: Buckets, fault_ts: float, window_end: float) -> float:
    window = buckets.window(fault_ts, window_end)
    failing = np.flatnonzero(buckets.failures[window] > 0)
    if not len(failing):
        return math.nan
    return max(0.0, float(buckets.ts[window][failing[0]] - fault_ts))


def error_window(load: pd.DataFrame, fault_ts: float, window_end: float, *, bucket: float) -> float:
    """Seconds from the first to the end of the last bucket with a failed request after a fault.

    Measured in the fault window `(fault_ts, window_end]`, from the first failing bucket's
    start (or the fault, if that bucket began before it) to the last failing bucket's end,
    so one failing bucket is one bucket long. Failures that come and go count as one span
    from first to last. 0 when no request failed (there was no error window); NaN when no
    request completed in the window (nothing was measured).
    """
    return _error_window(Buckets.from_frame(load, bucket), fault_ts, window_end)


def _error_window(buckets: Buckets, fault_ts: float, window_end: float) -> float:
    window = buckets.window(fault_ts, window_end)
    if buckets.requests[window].sum() <= 0:
        return math.nan
    failing = np.flatnonzero(buckets.failures[window] > 0)
    if not len(failing):
        return 0.0
    ts = buckets.ts[window]
    first = max(float(ts[failing[0]]), fault_ts)
    return float(ts[failing[-1]] + buckets.bucket - first)


def time_to_recover(
    load: pd.DataFrame,
    fault_ts: float,
    window_end: float,
    *,
    bucket: float,
    slo_availability: float,
    slo_window: float,
) -> float:
    """Seconds from the fault to the first moment from which the success ratio stays at or above the SLO.

    The success ratio is judged over the SLO window, rolling: for each bucket `j` of the
    fault window, `R(j)` = successes / completed requests over the `k = slo_window / bucket`
    buckets that start at `j` (weighted by requests, so an empty bucket weighs nothing).
    Only windows that fit entirely in the fault window are judged.

    - 0 when no window is below the SLO: the fault never made the service dip.
    - Otherwise the start of the first bucket after the LAST window below the SLO whose own
      window is at or above it, minus the fault time. Flapping around the SLO therefore
      counts until the last dip: "stays" means it did not dip again in this fault window.
    - NaN when no such window exists before the fault window ends (the next fault, or the
      end of measurement): it never recovered. Never 0 for that. Also NaN when no request
      completed in the fault window. A window with no completed request is neither a dip
      nor a recovery, and the recovery moment is always a bucket with completed requests
      (after a gap in the load, recovery is dated by the first bucket that has some).

    A fault window shorter than the SLO window is judged as one window: 0 if at or above
    the SLO, NaN if below.
    """
    return _time_to_recover(Buckets.from_frame(load, bucket), fault_ts, window_end, slo_availability, slo_window)


def _time_to_recover(buckets: Buckets, fault_ts: float, window_end: float, slo: float, slo_window: float) -> float:
    window = buckets.window(fault_ts, window_end)
    requests = buckets.requests[window]
    successes = buckets.successes[window]
    if requests.sum() <= 0:
        return math.nan
    k = max(1, round(slo_window / buckets.bucket))
    n = len(requests)
    if n < k:
        return 0.0 if successes.sum() / requests.sum() >= slo - _RATIO_EPSILON else math.nan
    cum_requests = np.concatenate(([0.0], np.cumsum(requests)))
    cum_successes = np.concatenate(([0.0], np.cumsum(successes)))
    window_requests = cum_requests[k:] - cum_requests[:-k]
    window_successes = cum_successes[k:] - cum_successes[:-k]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(window_requests > 0, window_successes / np.where(window_requests > 0, window_requests, 1), np.nan)
    bad = ratio < slo - _RATIO_EPSILON
    if not bad.any():
        return 0.0
    last_bad = int(np.flatnonzero(bad)[-1])
    # The recovery moment is a bucket that served requests: an empty bucket proves nothing.
    good = (ratio >= slo - _RATIO_EPSILON) & (requests[: len(ratio)] > 0)
    good_after = np.flatnonzero(good[last_bad + 1 :])
    if not len(good_after):
        return math.nan
    recovered = last_bad + 1 + int(good_after[0])
    return max(0.0, float(buckets.ts[window][recovered] - fault_ts))


# --- latency ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Latency percentiles of successful requests over a period, milliseconds (NaN if none)."""

    p50_ms: float
    p95_ms: float
    p99_ms: float


def latency_percentiles(load: pd.DataFrame, start: float, end: float, *, bucket: float) -> Latency:
    """p50/p95/p99 latency of the successful requests in `(start, end]`, milliseconds.

    Approximation (load.csv keeps percentiles per bucket, not every request): each bucket's
    latency distribution is rebuilt from its own percentiles as a piecewise-linear CDF:
    half of its successful requests at p50, then linear from p50 to p95 (45 %), p95 to p99
    (4 %) and p99 to max (1 %). The period's distribution is the mixture of the buckets
    weighted by their successful requests, and its percentiles are read off that mixture.
    This is exact when the buckets share one distribution, and otherwise stays between the
    buckets' own percentiles, with slow buckets weighing by how many requests they served
    (a slow bucket with few requests moves p50 little but p99 a lot, as it should).
    NaN when no request succeeded.
    """
    return _latency(Buckets.from_frame(load, bucket), start, end)


def _latency(buckets: Buckets, start: float, end: float) -> Latency:
    window = buckets.window(start, end)
    p50, p95, p99 = _mixture_quantiles(
        buckets.p50[window],
        buckets.p95[window],
        buckets.p99[window],
        buckets.max[window],
        buckets.successes[window],
        (0.5, 0.95, 0.99),
    )
    return Latency(p50, p95, p99)


def _mixture_quantiles(
    p50: np.ndarray,
    p95: np.ndarray,
    p99: np.ndarray,
    pmax: np.ndarray,
    weights: np.ndarray,
    levels: Sequence[float],
) -> tuple[float, ...]:
    """Quantiles of the weighted mixture of per-bucket piecewise-linear CDFs (see above)."""
    usable = (weights > 0) & ~np.isnan(p50)
    if not usable.any():
        return tuple(math.nan for _ in levels)
    w = weights[usable]
    a = p50[usable]
    b = np.fmax(np.where(np.isnan(p95[usable]), a, p95[usable]), a)
    c = np.fmax(np.where(np.isnan(p99[usable]), b, p99[usable]), b)
    d = np.fmax(np.where(np.isnan(pmax[usable]), c, pmax[usable]), c)
    # Point mass of 50 % at p50, then three uniform segments.
    seg_start = np.concatenate((a, b, c))
    seg_end = np.concatenate((b, c, d))
    seg_mass = np.concatenate((0.45 * w, 0.04 * w, 0.01 * w))
    flat = seg_end <= seg_start
    point_pos = np.concatenate((a, seg_start[flat]))
    point_mass = np.concatenate((0.5 * w, seg_mass[flat]))
    seg_start, seg_end, seg_mass = seg_start[~flat], seg_end[~flat], seg_mass[~flat]
    slope = seg_mass / (seg_end - seg_start)
    positions = np.concatenate((seg_start, seg_end, point_pos))
    slope_change = np.concatenate((slope, -slope, np.zeros(len(point_pos))))
    jumps = np.concatenate((np.zeros(2 * len(seg_start)), point_mass))
    order = np.argsort(positions, kind="stable")
    x = positions[order]
    slope_after = np.cumsum(slope_change[order])
    integral = np.concatenate(([0.0], np.cumsum(slope_after[:-1] * np.diff(x))))
    cdf_after = integral + np.cumsum(jumps[order])  # mixture CDF at x[i], jumps included
    total = float(w.sum())
    results = []
    for level in levels:
        target = level * total
        i = int(np.searchsorted(cdf_after, target - total * 1e-12, side="left"))
        i = min(i, len(x) - 1)
        if i == 0:
            results.append(float(x[0]))
            continue
        before_jump = cdf_after[i - 1] + slope_after[i - 1] * (x[i] - x[i - 1])
        if before_jump >= target and slope_after[i - 1] > 0:
            results.append(float(x[i - 1] + (target - cdf_after[i - 1]) / slope_after[i - 1]))
        else:
            results.append(float(x[i]))
    return tuple(results)


# --- throughput ------------------------------------------------------------------------


@dataclass(frozen=True)
class ThroughputDip:
    """How far successful throughput fell during a fault window.

    before_rps: median of the 1 s rolling successful requests/s before the fault.
    min_rps: the lowest 1 s rolling successful requests/s in the fault window.
    dip: 1 - min_rps / before_rps, a fraction in [0, 1] (0: no dip; 1: nothing succeeded
    for a whole second). NaN when either side has no complete second of data.
    What the clients did in that lowest second (bucketed by start time, so these are
    the requests they SENT then):
    sent_at_min_rps: requests/s sent in it, failed or not.
    failed_at_min: failed requests sent in it or in the second before it.
    slowest_at_min_ms: the slowest successful request in flight during it (started in
    it or before it and still running), ms; NaN when no request was.
    """

    before_rps: float
    min_rps: float
    dip: float
    sent_at_min_rps: float = math.nan
    failed_at_min: float = math.nan
    slowest_at_min_ms: float = math.nan


def throughput_dip(
    load: pd.DataFrame, before_start: float, fault_ts: float, window_end: float, *, bucket: float
) -> ThroughputDip:
    """Throughput dip of a fault: the 1 s rolling successful requests/s during `(fault_ts, window_end]`
    at its lowest, against its median over `(before_start, fault_ts]`.

    Successful requests, not all completed ones: a refused connection fails in microseconds,
    so the completed-request rate can rise during an outage while nothing gets served.
    """
    return _throughput_dip(Buckets.from_frame(load, bucket), before_start, fault_ts, window_end)


def _rolling_rate(buckets: Buckets, window: slice) -> np.ndarray:
    successes = buckets.successes[window]
    m = max(1, round(THROUGHPUT_SMOOTHING_S / buckets.bucket))
    if len(successes) < m:
        return np.zeros(0)
    cum = np.concatenate(([0.0], np.cumsum(successes)))
    return (cum[m:] - cum[:-m]) / (m * buckets.bucket)


def _throughput_dip(buckets: Buckets, before_start: float, fault_ts: float, window_end: float) -> ThroughputDip:
    before = _rolling_rate(buckets, buckets.window(before_start, fault_ts))
    fault_window = buckets.window(fault_ts, window_end)
    during = _rolling_rate(buckets, fault_window)
    before_rps = float(np.median(before)) if len(before) else math.nan
    min_rps = float(during.min()) if len(during) else math.nan
    if math.isnan(before_rps) or math.isnan(min_rps) or before_rps <= 0:
        return ThroughputDip(before_rps, min_rps, math.nan)
    m = max(1, round(THROUGHPUT_SMOOTHING_S / buckets.bucket))
    lowest = fault_window.start + int(np.argmin(during))
    sent = float(buckets.requests[lowest : lowest + m].sum()) / (m * buckets.bucket)
    failed = float(buckets.failures[max(0, lowest - m) : lowest + m].sum())
    # A request started in bucket j (at the latest at its end) lasting max_ms overlaps
    # the lowest second if it was still running when that second began.
    start = buckets.ts[lowest]
    upto = slice(0, lowest + m)
    overlapping = (buckets.ts[upto] + buckets.bucket + np.nan_to_num(buckets.max[upto], nan=0.0) / 1000.0) > start
    in_flight = buckets.max[upto][overlapping]
    slowest = float(np.nanmax(in_flight)) if np.isfinite(in_flight).any() else math.nan
    return ThroughputDip(
        before_rps, min_rps, float(np.clip(1.0 - min_rps / before_rps, 0.0, 1.0)), sent, failed, slowest
    )


def dip_in_the_load(dip: float, failed_at_min: float, slowest_at_min_ms: float) -> bool:
    """Whether a throughput dip (see `ThroughputDip`) was the clients not sending rather
    than the service failing or holding them: deep (at least LOAD_PACED_MIN_DIP), no
    request failed in or just before its lowest second, and none in flight then took
    longer than LOAD_PACED_MAX_IN_FLIGHT_MS. Closed-loop clients (a Locust user sends
    its next request only after the previous answer, its sleeps and its wait_time) do
    this when many pause together: users started at once finish a long task at once.
    False when any input is missing.
    """
    if any(math.isnan(value) for value in (dip, failed_at_min)):
        return False
    if dip < LOAD_PACED_MIN_DIP or failed_at_min > 0:
        return False
    # No request in flight at all in that second is the most idle a client can be.
    return math.isnan(slowest_at_min_ms) or slowest_at_min_ms <= LOAD_PACED_MAX_IN_FLIGHT_MS


# --- time series for charts ------------------------------------------------------------


def time_series(
    load: pd.DataFrame,
    *,
    measure_start: float,
    measure_end: float,
    bucket: float,
    resolution: float | None = None,
) -> pd.DataFrame:
    """The measurement window as a time series for charts, one row per bin.

    Columns: t_s (bin start, seconds since measure start), requests, successes, failures
    (counts), success_ratio (fraction, NaN when no request completed), success_ratio_min
    (the lowest success ratio of one bucket in the bin: a short dip that merging buckets
    would average away), throughput_rps (successful requests/s), throughput_smooth_rps (1 s trailing mean of it), p50_ms,
    p95_ms, p99_ms (successful-request-weighted mean of the bucket percentiles: a display
    approximation; use `latency_percentiles` for numbers).

    `resolution` (seconds, a multiple of the bucket) merges buckets so a long trial stays
    light to draw; default: the bucket, or coarser so there are at most 600 bins.
    """
    buckets = Buckets.from_frame(load, bucket)
    duration = max(0.0, measure_end - measure_start)
    if resolution is None:
        resolution = max(bucket, duration / 600.0)
    per_bin = max(1, math.ceil(resolution / bucket - 1e-9))
    resolution = per_bin * bucket
    window = buckets.window(measure_start, measure_end)
    ts = buckets.ts[window]
    columns = ("t_s", "requests", "successes", "failures", "success_ratio", "success_ratio_min", "throughput_rps", "throughput_smooth_rps", "p50_ms", "p95_ms", "p99_ms")
    if not len(ts):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    # A bucket goes to the bin its end falls in; the tolerance absorbs float error on epoch times.
    bins = np.ceil((ts + bucket - measure_start) / resolution - 1e-3).astype(int) - 1
    bins = np.maximum(bins, 0)
    frame = pd.DataFrame(
        {
            "bin": bins,
            "requests": buckets.requests[window],
            "successes": buckets.successes[window],
            "failures": buckets.failures[window],
        }
    )
    for name, values in (("p50_ms", buckets.p50), ("p95_ms", buckets.p95), ("p99_ms", buckets.p99)):
        weighted = values[window] * buckets.successes[window]
        frame[name + "_w"] = np.where(np.isnan(weighted), 0.0, weighted)
        frame[name + "_n"] = np.where(np.isnan(values[window]), 0.0, buckets.successes[window])
    requests = buckets.requests[window]
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["_ratio"] = np.where(requests > 0, buckets.successes[window] / np.where(requests > 0, requests, 1), np.nan)
    grouped = frame.drop(columns="_ratio").groupby("bin", sort=True).sum()
    worst = frame.groupby("bin", sort=True)["_ratio"].min()
    full = pd.RangeIndex(0, int(grouped.index.max()) + 1)
    grouped = grouped.reindex(full, fill_value=0.0)
    worst = worst.reindex(full)
    out = pd.DataFrame({"t_s": full.to_numpy() * resolution})
    for name in ("requests", "successes", "failures"):
        out[name] = grouped[name].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["success_ratio"] = np.where(out["requests"] > 0, out["successes"] / out["requests"].where(out["requests"] > 0, 1), np.nan)
        out["success_ratio_min"] = worst.to_numpy(dtype=float)
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            n = grouped[name + "_n"].to_numpy()
            out[name] = np.where(n > 0, grouped[name + "_w"].to_numpy() / np.where(n > 0, n, 1), np.nan)
    out["throughput_rps"] = out["successes"] / resolution
    smooth = max(1, round(THROUGHPUT_SMOOTHING_S / resolution))
    out["throughput_smooth_rps"] = out["throughput_rps"].rolling(smooth, min_periods=1).mean()
    return out[list(columns)]


# --- cluster events: capacity and pod phases ---------------------------------------------


def _endpoint_pod(name: str) -> str:
    """The pod behind an endpoint event: its name, without an `@host:port` suffix."""
    return name.split("@", 1)[0]


def desired_replicas_over_time(
    events: pd.DataFrame, faults: pd.DataFrame | None, initial: int | None
) -> pd.DataFrame:
    """Desired replicas as a step function: columns ts, desired (count).

    Starts at `initial` (trial.json desired_replicas) and follows `scaled` and
    `hpa_scaled` events (detail `replicas=N`) and `scale` faults (detail `replicas=N`),
    whichever comes first.
    Empty when nothing is known.
    """
    rows: list[tuple[float, int]] = []
    if initial is not None:
        rows.append((-math.inf, int(initial)))
    # hpa_scaled too: on a real cluster the HPA's rescale is only known from its Event.
    scaled_kinds = [EventKind.SCALED.value, EventKind.HPA_SCALED.value]
    sources = [events[events["kind"].isin(scaled_kinds)]] if len(events) else []
    if faults is not None and len(faults) and "action" in faults.columns:
        sources.append(faults[faults["action"].astype(str) == "scale"])
    for source in sources:
        for ts, detail in zip(pd.to_numeric(source["ts"], errors="coerce"), source["detail"].astype(str)):
            match = _REPLICAS_DETAIL.search(detail)
            if match and not math.isnan(ts):
                rows.append((float(ts), int(match.group(1))))
    rows.sort(key=lambda row: row[0])
    return pd.DataFrame(rows, columns=["ts", "desired"])


def ready_endpoints(
    events: pd.DataFrame,
    *,
    measure_start: float | None,
    desired_replicas: int | None,
    faults: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Ready endpoints (pods the Service routes to) and desired replicas over time.

    Columns: ts (epoch s), ready (count), desired (count, NaN when unknown); one row per
    moment either changes, and one at `measure_start`. Counted from `endpoint_added` /
    `endpoint_removed` events per pod (a repeated event for a pod already in that state
    changes nothing). When the events hold no endpoint change up to `measure_start` (a
    recorder that started late), the count at measure start is taken to be
    `desired_replicas`: the engine only starts measuring once the workload is ready.
    Empty when the events hold no endpoint change at all (the count is unknown).
    """
    desired = desired_replicas_over_time(events, faults, desired_replicas)
    kinds = events["kind"].astype(str)
    endpoint_events = events[kinds.isin([EventKind.ENDPOINT_ADDED.value, EventKind.ENDPOINT_REMOVED.value])]
    if not len(endpoint_events):
        # No endpoint was ever recorded: the count is unknown, not "unchanged".
        return pd.DataFrame({"ts": pd.Series(dtype=float), "ready": pd.Series(dtype=int), "desired": pd.Series(dtype=float)})
    ts = pd.to_numeric(endpoint_events["ts"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    pods = endpoint_events["name"].astype(str).map(_endpoint_pod).to_numpy()[order]
    added = (endpoint_events["kind"].astype(str) == EventKind.ENDPOINT_ADDED.value).to_numpy()[order]
    frame = pd.DataFrame({"ts": ts, "pod": pods, "added": added})
    # A pod whose first event is a removal was in the Service before the recording began.
    previous = frame.groupby("pod", sort=False)["added"].shift(1)
    previous = previous.where(previous.notna(), ~frame["added"]).astype(bool)
    delta = frame["added"].astype(int) - previous.astype(int)
    ready = np.cumsum(delta.to_numpy())
    offset = 0
    if measure_start is not None:
        prior = ts <= measure_start
        if not prior.any() and desired_replicas is not None:
            offset = int(desired_replicas)
    ready = ready + offset
    # One row per moment either count changes (endpoint events, desired-replica changes).
    times = [ts, desired["ts"].to_numpy(dtype=float)]
    if measure_start is not None:
        times.append(np.array([float(measure_start)]))
    moments = np.unique(np.concatenate(times))
    moments = moments[np.isfinite(moments)]
    idx = np.searchsorted(ts, moments, side="right") - 1
    counts = np.where(idx >= 0, ready[np.clip(idx, 0, None)], offset)
    return pd.DataFrame({"ts": moments, "ready": counts.astype(int), "desired": _step_lookup(desired, moments)})


def _step_lookup(steps: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """Value of a (ts, desired) step function at each time (NaN before its first step)."""
    if not len(steps):
        return np.full(len(at), np.nan)
    idx = np.searchsorted(steps["ts"].to_numpy(dtype=float), at, side="right") - 1
    values = steps["desired"].to_numpy(dtype=float)
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)


def capacity_recovered(endpoints: pd.DataFrame, fault_ts: float, window_end: float) -> float:
    """Seconds from the fault until ready endpoints are back to the desired replicas.

    `endpoints` is `ready_endpoints(...)`. Looks at the fault window `[fault_ts, window_end)`:
    the first moment ready < desired (a drop, or a shortfall carried over from before the
    fault), then the first later moment ready >= desired. 0 when ready never fell below
    desired in the window; NaN when it did and never came back before the window ended,
    or when ready/desired are unknown (no endpoint events: `endpoints` is empty).
    """
    if not len(endpoints):
        return math.nan
    ts = endpoints["ts"].to_numpy(dtype=float)
    ready = endpoints["ready"].to_numpy(dtype=float)
    desired = endpoints["desired"].to_numpy(dtype=float)
    before = np.flatnonzero(ts < fault_ts)
    inside = np.flatnonzero((ts >= fault_ts) & (ts < window_end))
    state_ts = np.concatenate(([fault_ts], ts[inside])) if len(before) else ts[inside]
    state_ready = np.concatenate(([ready[before[-1]]], ready[inside])) if len(before) else ready[inside]
    state_desired = np.concatenate(([desired[before[-1]]], desired[inside])) if len(before) else desired[inside]
    if not len(state_ts) or np.isnan(state_desired).all():
        return math.nan
    short = state_ready < state_desired
    if not short.any():
        return 0.0
    first_short = int(np.flatnonzero(short)[0])
    back = np.flatnonzero(~short[first_short:] & ~np.isnan(state_desired[first_short:]))
    if not len(back):
        return math.nan
    return float(state_ts[first_short + int(back[0])] - fault_ts)


def recovery_phases(
    events: pd.DataFrame,
    *,
    fault_ts: float,
    window_end: float,
    action: str,
    targets: Sequence[str] = (),
) -> pd.DataFrame:
    """How the pods that replaced a fault's victims came back, one row per pod, seconds.

    For pod-delete, node faults and scale: the pods created in the fault window
    `[fault_ts, window_end)` are the replacements, matched in creation order to the
    fault's targets where those are pods. For container-kill: the target pods themselves,
    restarted in place (no create/schedule phase).

    Columns: pod, replaces, then the phases, each the time between two events:
    phase_create_s (fault -> pod_created), phase_schedule_s (created -> pod_scheduled),
    phase_start_s (scheduled, or the fault for a restart -> container_started),
    phase_ready_s (started -> pod_ready), phase_endpoint_s (ready -> endpoint_added),
    phase_total_s (fault -> endpoint_added, or -> pod_ready if no endpoint event came).
    A phase whose events did not happen in the window is NaN.
    """
    return _recovery_phases(PodEvents.from_frame(events), fault_ts, window_end, action, targets)


@dataclass(frozen=True)
class PodEvents:
    """The pod and endpoint events of a trial, sorted by time, endpoint names mapped to pods."""

    ts: np.ndarray
    kind: np.ndarray
    pod: np.ndarray

    @staticmethod
    def from_frame(events: pd.DataFrame) -> PodEvents:
        if not len(events):
            return PodEvents(np.zeros(0), np.zeros(0, dtype=object), np.zeros(0, dtype=object))
        kinds = events["kind"].astype(str)
        scoped = events[kinds.isin(_POD_EVENT_KINDS)]
        ts = pd.to_numeric(scoped["ts"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        kind = scoped["kind"].astype(str).to_numpy(dtype=object)
        pod = scoped["name"].astype(str).map(_endpoint_pod).to_numpy(dtype=object)
        keep = ~np.isnan(ts)
        order = np.argsort(ts[keep], kind="stable")
        return PodEvents(ts[keep][order], kind[keep][order], pod[keep][order])


def _recovery_phases(events: PodEvents, fault_ts: float, window_end: float, action: str, targets: Sequence[str]) -> pd.DataFrame:
    lo = int(np.searchsorted(events.ts, fault_ts, side="left"))
    hi = int(np.searchsorted(events.ts, window_end, side="left"))
    first: dict[tuple[str, str], float] = {}
    created_order: list[str] = []
    for ts, kind, pod in zip(events.ts[lo:hi], events.kind[lo:hi], events.pod[lo:hi]):
        if (pod, kind) not in first:
            first[(pod, kind)] = float(ts)
            if kind == EventKind.POD_CREATED.value:
                created_order.append(pod)

    def at(pods: Sequence[str], kind: str) -> np.ndarray:
        return np.array([first.get((pod, kind), np.nan) for pod in pods], dtype=float)

    if action == "container-kill":
        pods = [t for t in targets if t]
        replaces = list(pods)
        created = np.full(len(pods), np.nan)
        scheduled = np.full(len(pods), np.nan)
        start_from = np.full(len(pods), float(fault_ts))
    else:
        pods = created_order
        victims = [t for t in targets if t] if action == "pod-delete" else []
        replaces = [victims[i] if i < len(victims) else "" for i in range(len(pods))]
        created = at(pods, EventKind.POD_CREATED.value)
        scheduled = at(pods, EventKind.POD_SCHEDULED.value)
        start_from = scheduled
    started = at(pods, EventKind.CONTAINER_STARTED.value)
    ready = at(pods, EventKind.POD_READY.value)
    endpoint = at(pods, EventKind.ENDPOINT_ADDED.value)
    back = np.where(np.isnan(endpoint), ready, endpoint)
    return pd.DataFrame(
        {
            "pod": pods,
            "replaces": replaces,
            "phase_create_s": created - fault_ts,
            "phase_schedule_s": scheduled - created,
            "phase_start_s": started - start_from,
            "phase_ready_s": ready - started,
            "phase_endpoint_s": endpoint - ready,
            "phase_total_s": back - fault_ts,
        },
        columns=["pod", "replaces", *PHASE_COLUMNS],
    )


# Pod states for the recovery timeline, in the order a replacement goes through them.
POD_STATES = (
    "scheduling",
    "starting",
    "warming up",
    "joining Service",
    "serving",
    "not ready",
    "restarting",
    "terminating",
)
_STATE_AFTER = {
    EventKind.POD_CREATED.value: "scheduling",
    EventKind.POD_PENDING.value: "scheduling",
    EventKind.POD_SCHEDULED.value: "starting",
    EventKind.CONTAINER_RESTARTED.value: "starting",
    EventKind.CONTAINER_STARTED.value: "warming up",
    EventKind.CONTAINER_DIED.value: "restarting",
    EventKind.BACK_OFF.value: "restarting",
    EventKind.POD_READY.value: "joining Service",
    EventKind.ENDPOINT_ADDED.value: "serving",
    EventKind.POD_NOT_READY.value: "not ready",
    EventKind.ENDPOINT_REMOVED.value: "not ready",
    EventKind.POD_TERMINATING.value: "terminating",
    EventKind.POD_EVICTED.value: "terminating",
}


def pod_states(events: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    """Each pod's state over `[start, end)`, from its events: columns pod, state, start_ts, end_ts.

    States (`POD_STATES`): scheduling (created, not bound), starting (bound, container not
    running), warming up (running, not ready), joining Service (ready, not yet in the
    endpoints), serving (in the endpoints), not ready, restarting (container died or in
    back-off), terminating (deletion or eviction started; sticky until pod_deleted). Events
    of a deleted pod (an endpoint removal that propagates late) change nothing. The state
    at `start` comes from the pod's earlier events; a pod deleted before `start` is left out.
    """
    columns = ["pod", "state", "start_ts", "end_ts"]
    if not len(events):
        return pd.DataFrame(columns=columns)
    kinds = events["kind"].astype(str)
    scoped = events[kinds.isin(_POD_EVENT_KINDS)]
    ts = pd.to_numeric(scoped["ts"], errors="coerce").to_numpy(dtype=float)
    frame = pd.DataFrame({"ts": ts, "kind": scoped["kind"].astype(str).to_numpy(), "pod": scoped["name"].astype(str).map(_endpoint_pod).to_numpy()})
    frame = frame[(frame["ts"] < end) & ~np.isnan(frame["ts"])].sort_values("ts", kind="stable")
    rows: list[tuple[str, str, float, float]] = []
    for pod, group in frame.groupby("pod", sort=False):
        state: str | None = None
        deleted = False
        since = start
        for event_ts, kind in zip(group["ts"].to_numpy(), group["kind"].to_numpy()):
            if kind == EventKind.POD_DELETED.value:
                new_state = None
                deleted = True
            elif deleted and kind != EventKind.POD_CREATED.value:
                continue  # e.g. its endpoint removal, propagated after the pod was gone
            elif state == "terminating":
                new_state = "terminating"
            elif kind == EventKind.ENDPOINT_REMOVED.value and state not in (None, "serving"):
                # The removal trails the pod's own change (not ready, container died, back-off,
                # even the restart) by the propagation delay; it must not relabel that state.
                new_state = state
            else:
                new_state = _STATE_AFTER.get(kind, state)
            if kind == EventKind.POD_CREATED.value:
                deleted = False
            if new_state == state:
                continue
            if state is not None and event_ts > start:
                rows.append((str(pod), state, max(since, start), float(event_ts)))
            state, since = new_state, float(event_ts)
        if state is not None:
            rows.append((str(pod), state, max(since, start), float(end)))
    out = pd.DataFrame(rows, columns=columns)
    return out[out["end_ts"] > out["start_ts"]].reset_index(drop=True)


# --- one trial, every fault ------------------------------------------------------------


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
      (analysis_data.py); NaN without load.dataIntegrity.
    - status: the trial's status (completed, failed, aborted, running).
    """
    rows = [row for trial in run.trials for row in trial_summary(trial, run)]
    columns = [*SUMMARY_LEAD_COLUMNS, *_param_paths(run), *SUMMARY_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    numeric = [c for c in SUMMARY_COLUMNS if c not in ("label", "fault_id", "action", "targets", "replacement_pod", "status")]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    return frame


# --- autoscaling and load stages (definitions in analysis_autoscale.py) -------------------


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


# --- across trials ---------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregate:
    """A metric across trials: median, min, max and a bootstrap 95 % CI of the median.

    n counts the trials that had a value. The CI is NaN for fewer than two trials.
    """

    n: int
    median: float
    min: float
    max: float
    ci_low: float
    ci_high: float


def aggregate(values: Iterable[float], rng: np.random.Generator, *, never_is_worst: bool = False) -> Aggregate:
    """Median, min, max and a percentile-bootstrap 95 % CI of the median.

    The CI resamples the trials with replacement `BOOTSTRAP_RESAMPLES` times with `rng`
    (pass a seeded `numpy.random.Generator`: same seed, same interval) and takes the 2.5th
    and 97.5th percentiles of the resampled medians (no interpolation, so a bound is always
    a value the median could take). With `never_is_worst`, NaN means "never happened" and
    ranks above every number (a trial that never recovered is the slowest); a statistic
    that lands on such a trial is reported as NaN. Otherwise NaNs are left out.
    """
    array = np.asarray(list(values), dtype=float)
    if never_is_worst:
        array = np.where(np.isnan(array), np.inf, array)
    else:
        array = array[~np.isnan(array)]
    n = len(array)
    if n == 0:
        return Aggregate(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    median = float(np.median(array))
    ci_low = ci_high = math.nan
    if n >= 2:
        samples = array[rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))]
        medians = np.median(samples, axis=1)
        tail = (1.0 - CI_LEVEL) / 2.0
        ci_low = float(np.quantile(medians, tail, method="inverted_cdf"))
        ci_high = float(np.quantile(medians, 1.0 - tail, method="inverted_cdf"))

    def finite(value: float) -> float:
        return value if math.isfinite(value) else math.nan

    return Aggregate(n, finite(median), finite(float(array.min())), finite(float(array.max())), finite(ci_low), finite(ci_high))


def trial_outcomes(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: trial-level metrics, and each fault metric of the trial's worst fault.

    Worst means: lowest fault_window_availability and time_to_first_error_s, highest
    error_window_s, p99_ms_during, throughput_dip, time_to_recover_s and
    capacity_recovered_s, where never recovering (NaN on a fault row) is the worst.
    Fault metrics are NaN for a trial without faults.
    """
    if not len(summary):
        return summary.iloc[0:0].copy()
    has_fault = summary["fault_id"].notna()
    grouped = summary.groupby("trial", sort=False)
    out = grouped.first()
    for metric, how in _WORST_OF_TRIAL.items():
        values = summary[metric].astype(float)
        if metric in NEVER_IS_WORST:
            values = values.where(~(has_fault & values.isna()), math.inf)
        values = values.where(has_fault)
        # Kept as +inf for never-recovered: comparison_table counts and ranks those.
        out[metric] = values.groupby(summary["trial"], sort=False).agg(how)
    out["faults"] = has_fault.groupby(summary["trial"], sort=False).sum()
    return out.reset_index()


def throughput_dip_notes(summary: pd.DataFrame) -> list[str]:
    """What a reader must know beside the throughput dip, one sentence per sweep point
    (in order of appearance) whose worst dip, in at least one trial, was in the load
    itself (`dip_in_the_load`). The numbers are those of the trial with the deepest such
    dip: before and lowest successful requests/s, the requests the clients sent and
    failed then, and the slowest request in flight. Empty when no dip qualifies.
    """
    needed = {"label", "trial", "throughput_dip", "throughput_failed_at_min", "throughput_slowest_at_min_ms"}
    if not len(summary) or not needed <= set(summary.columns):
        return []
    rows = summary[summary["fault_id"].notna() & summary["throughput_dip"].notna()]
    if not len(rows):
        return []
    # Each trial's worst dip, as `trial_outcomes` reduces it.
    worst = rows.loc[rows.groupby("trial", sort=False)["throughput_dip"].idxmax()]
    notes = []
    for label, group in worst.groupby("label", sort=False):
        trials = len(group)
        paced = group[
            [
                dip_in_the_load(float(r.throughput_dip), float(r.throughput_failed_at_min), float(r.throughput_slowest_at_min_ms))
                for r in group.itertuples()
            ]
        ]
        if not len(paced):
            continue
        row = paced.loc[paced["throughput_dip"].idxmax()]
        slowest = float(row["throughput_slowest_at_min_ms"])
        in_flight = "no request was in flight then" if math.isnan(slowest) else f"the slowest request in flight then took {slowest:.0f} ms"
        notes.append(
            f"{label}: the throughput dip is the load pausing, not the service ({len(paced)} of {trials} "
            f"trial{'s' if trials != 1 else ''}). In trial {row['trial']}, after {row['fault_id']} ({row['action']}), "
            f"successful requests fell from {float(row['throughput_before_rps']):.0f}/s to "
            f"{float(row['throughput_min_rps']):.0f}/s ({float(row['throughput_dip']):.0%}) in the lowest second, "
            f"but the clients sent only {float(row['throughput_sent_at_min_rps']):.0f} requests/s in it, none failed "
            f"in it or the second before, and {in_flight}: the service answered every request it got, "
            "the users were not sending. Locust users are closed-loop: each sends its next request only "
            "after the previous answer, its sleeps and its wait_time, so users that started together and "
            "finish a long task together pause together. Run the same load without the fault to see its own rhythm."
        )
    return notes


def comparison_table(summary: pd.DataFrame, sweep_paths: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
    """comparison.csv: one row per sweep point, aggregated across its trials (`aggregate`).

    Columns: point, label, one per sweep parameter, trials (trials with a summary row),
    never_recovered (trials with a fault that never recovered to the SLO), then for each of
    `COMPARISON_METRICS`: <metric>_median, _min, _max, _ci_low, _ci_high. Fault metrics are
    first reduced per trial to its worst fault (`trial_outcomes`); a never-recovered trial
    counts as the slowest for time_to_recover_s and capacity_recovered_s.
    """
    stats = ("median", "min", "max", "ci_low", "ci_high")
    columns = ["point", "label", *sweep_paths, "trials", "never_recovered"]
    columns += [f"{metric}_{stat}" for metric in COMPARISON_METRICS for stat in stats]
    outcomes = trial_outcomes(summary)
    if not len(outcomes):
        return pd.DataFrame(columns=columns)
    rows = []
    for point, group in outcomes.groupby("point", sort=True):
        row: dict[str, Any] = {"point": point, "label": group["label"].iloc[0]}
        row.update({path: group[path].iloc[0] if path in group.columns else None for path in sweep_paths})
        row["trials"] = len(group)
        row["never_recovered"] = int(np.isinf(group["time_to_recover_s"].astype(float)).sum())
        for metric in COMPARISON_METRICS:
            values = group[metric].astype(float).to_numpy()
            if metric in NEVER_IS_WORST:
                faulted = group["faults"].to_numpy() > 0
                values = np.where(np.isinf(values), np.nan, values)[faulted]
            result = aggregate(values, rng, never_is_worst=metric in NEVER_IS_WORST)
            for stat in stats:
                row[f"{metric}_{stat}"] = getattr(result, stat)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def representative_trials(summary: pd.DataFrame) -> dict[str, str]:
    """The trial that stands for each sweep point on a time-series chart: label -> trial id.

    The trial with the median availability (for an even count, the lower of the two middle
    ones, so the chart never looks better than the typical trial). Trials without a
    measured availability are chosen only when no other exists.
    """
    if not len(summary):
        return {}
    trials = summary.groupby("trial", sort=False).first().reset_index()
    chosen = {}
    for label, group in trials.groupby("label", sort=False):
        ranked = group.assign(_a=group["availability"].astype(float)).sort_values(["_a", "trial_index"], na_position="last")
        measured = ranked[ranked["_a"].notna()]
        pool = measured if len(measured) else ranked
        chosen[str(label)] = str(pool["trial"].iloc[(len(pool) - 1) // 2])
    return chosen


# --- the verdict -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Whether a run met its SLO and recovery budget; the engine exits 1 when not passed."""

    passed: bool
    reasons: tuple[str, ...]


def verdict(summary: pd.DataFrame, measure: MeasureSpec) -> Verdict:
    """Judge the completed trials against `measure.slo` and `measure.recovery_budget`.

    Not passed when, for any completed trial: its availability over the measurement window
    is below `slo.availability` (or nothing completed); or, with a recovery budget set, a
    fault's time to recover is above the budget or NaN (never recovered counts as missed;
    so does a fault window in which no request completed, with its own reason).
    With `measure.max_lost_writes` set, also not passed when a trial lost more
    acknowledged writes than that (`lost_writes`), or has no data-integrity record.
    Trials that did not complete are not judged; with none completed, not passed. Each
    reason names the trial (and fault) and the numbers, in table order.
    """
    if not len(summary):
        return Verdict(False, ("no trial was measured",))
    completed = summary[summary["status"] == "completed"]
    if not len(completed):
        return Verdict(False, ("no trial completed, so nothing could be judged",))
    slo = measure.slo
    reasons: list[str] = []
    for trial_id, group in completed.groupby("trial", sort=False):
        value = float(group["availability"].iloc[0])
        if math.isnan(value):
            reasons.append(f"{trial_id}: no request completed in the measurement window")
        elif value < slo.availability - _RATIO_EPSILON:
            reasons.append(f"{trial_id}: availability {_percent(value)} below the SLO {_percent(slo.availability)}")
        reasons += _lost_writes_reasons(str(trial_id), group, measure.max_lost_writes)
        if measure.recovery_budget is None:
            continue
        for fault in group[group["fault_id"].notna()].itertuples(index=False):
            recover = float(fault.time_to_recover_s)
            where = f"{trial_id} {fault.fault_id} ({fault.action} at {fault.fault_s:.1f}s)"
            if math.isnan(recover) and _no_request_completed(fault):
                # Not the same story as a dip that never ended: nothing came back at all,
                # requests hung past the window or the load stopped. Still a miss.
                reasons.append(
                    f"{where}: no request completed in its {fault.fault_window_s:.1f}s fault window "
                    "(requests hung past it, or the load stopped), so it did not recover within "
                    f"the recovery budget {measure.recovery_budget:g}s"
                )
            elif math.isnan(recover):
                reasons.append(
                    f"{where}: never recovered to {_percent(slo.availability)} over {slo.window:g}s "
                    f"(recovery budget {measure.recovery_budget:g}s)"
                )
            elif recover > measure.recovery_budget:
                reasons.append(f"{where}: recovered in {recover:.1f}s, over the recovery budget {measure.recovery_budget:g}s")
    return Verdict(not reasons, tuple(reasons))


def _lost_writes_reasons(trial_id: str, group: pd.DataFrame, budget: int | None) -> list[str]:
    if budget is None:
        return []
    lost = float(group["lost_writes"].iloc[0])
    if math.isnan(lost):
        return [f"{trial_id}: no data-integrity record (integrity.csv), so lost writes could not be judged"]
    if lost > budget:
        acked = float(group["acknowledged_writes"].iloc[0])
        return [f"{trial_id}: lost {lost:.0f} of {acked:.0f} acknowledged writes, above measure.maxLostWrites {budget}"]
    return []


def _no_request_completed(fault: Any) -> bool:
    requests = getattr(fault, "fault_window_requests", math.nan)
    return requests is not None and not pd.isna(requests) and float(requests) == 0


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"
