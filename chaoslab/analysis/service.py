"""What the users saw of the service: availability, failures by class, time to first error,
error window, time to recover.

The request-side definitions of a report, over load.csv's buckets (`buckets.Buckets`).
Each public function takes the load frame; its `_`-twin takes prebuilt buckets, which is
what the summary table calls so a trial's buckets are built once.

Conventions as in the package docstring (`chaoslab.analysis`): epoch seconds in, seconds
or milliseconds out, a bucket belongs to a window by its end, missing is NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from chaoslab.analysis.buckets import _RATIO_EPSILON, Buckets, _ratio
from chaoslab.results import FAILURE_CLASSES


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
