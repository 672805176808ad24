"""How far successful throughput fell after a fault, and whether the dip was the load itself.

Kept apart from the error metrics (`service.py`): a dip in throughput can happen with no
failed request at all (closed-loop clients pausing together), and telling those apart
needs its own thresholds.

Conventions as in the package docstring (`chaoslab.analysis`): epoch seconds in, seconds
or milliseconds out, a bucket belongs to a window by its end, missing is NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chaoslab.analysis.buckets import Buckets

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
