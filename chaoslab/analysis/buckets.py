"""load.csv as numpy arrays, and which buckets fall in a time window.

Every load metric (availability, error windows, recovery, latency, throughput, the chart
series) reads the same arrays and the same window rule, so both live once, here: a
bucket belongs to `(a, b]` by its END (see the package docstring).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chaoslab.results import FAILURE_CLASSES

# Ratios are compared with the SLO with this slack, so 99/100 counts as "at 99 %" even
# after floating-point rounding.
_RATIO_EPSILON = 1e-12


@dataclass(frozen=True)
class Buckets:
    """load.csv as numpy arrays, sorted by time: what every load metric reads.

    Built once per trial by `Buckets.from_frame`; the public metric functions accept the
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
