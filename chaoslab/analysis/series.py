"""The measurement window as a time series for charts (bins of load buckets).

A display series, not a metric: charts draw it, numbers come from the metric functions.
Beside them because it bins the same buckets by the same window rule.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from chaoslab.analysis.buckets import Buckets
from chaoslab.analysis.throughput import THROUGHPUT_SMOOTHING_S


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
