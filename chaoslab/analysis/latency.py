"""Latency percentiles of successful requests over a period, rebuilt from per-bucket percentiles.

A module of its own because load.csv keeps only each bucket's p50/p95/p99/max, so a
period's percentiles are an approximation (a mixture of per-bucket distributions) whose
definition and arithmetic deserve one place.

Conventions as in the package docstring (`chaoslab.analysis`): epoch seconds in, seconds
or milliseconds out, a bucket belongs to a window by its end, missing is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chaoslab.analysis.buckets import Buckets


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
