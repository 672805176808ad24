"""A compact, mergeable latency histogram with a bounded relative error.

Percentiles cannot be averaged: p95 of a 100 ms bucket merged from two Locust processes
must come from the merged distribution. Keeping every latency is too much at thousands of
requests per second, so each bucket keeps counts in logarithmic bins (the DDSketch
layout): bin `i` holds values in `(GAMMA**(i-1), GAMMA**i]` and stands for the one value
that is at most `RELATIVE_ERROR` away from all of them. Merging is adding counts, and a
percentile read from the merge is within `RELATIVE_ERROR` of the exact nearest-rank one.
The maximum is kept exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RELATIVE_ERROR = 0.01
"""Largest relative error of a percentile read from the histogram (1 %)."""

# Ratio between the bounds of one bin; (1+a)/(1-a) makes the bin's representative value
# at most `a` away (relatively) from every value in the bin.
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)

MIN_MS = 0.001
"""Latencies below 1 µs share one bin: below the resolution of the timers Locust uses."""


def bin_of(latency_ms: float) -> int:
    """The index of the bin holding `latency_ms` (values below `MIN_MS` count as `MIN_MS`)."""
    return math.ceil(math.log(latency_ms if latency_ms > MIN_MS else MIN_MS) / _LOG_GAMMA)


def bin_value(index: int) -> float:
    """The value bin `index` stands for: within `RELATIVE_ERROR` of every value in it (ms)."""
    return 2 * GAMMA**index / (GAMMA + 1)


class LatencyHistogram:
    """Counts of latencies (milliseconds) per logarithmic bin, plus the exact maximum."""

    __slots__ = ("bins", "count", "max_ms")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.count = 0
        self.max_ms: float | None = None

    def add(self, latency_ms: float) -> None:
        index = bin_of(latency_ms)
        bins = self.bins
        bins[index] = bins.get(index, 0) + 1
        self.count += 1
        if self.max_ms is None or latency_ms > self.max_ms:
            self.max_ms = latency_ms

    def merge(self, other: LatencyHistogram) -> None:
        """Add `other`'s counts to this histogram (as if its values had been added here)."""
        bins = self.bins
        for index, n in other.bins.items():
            bins[index] = bins.get(index, 0) + n
        self.count += other.count
        if other.max_ms is not None and (self.max_ms is None or other.max_ms > self.max_ms):
            self.max_ms = other.max_ms

    def quantile(self, q: float) -> float | None:
        """The nearest-rank `q`-quantile in ms (`q` in (0, 1]), None when empty.

        Nearest rank: the smallest recorded value with at least `ceil(q * count)` values at
        or below it, read as its bin's value (relative error at most `RELATIVE_ERROR`) and
        never above the exact maximum.
        """
        if not 0 < q <= 1:
            raise ValueError(f"expected a quantile in (0, 1], got {q}")
        if self.count == 0 or self.max_ms is None:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= rank:
                return min(bin_value(index), self.max_ms)
        return self.max_ms  # unreachable: the counts add up to `count`

    def to_wire(self) -> list[list[int]]:
        """The bins as `[[index, count], ...]`, sorted, for a JSON line."""
        return [[index, self.bins[index]] for index in sorted(self.bins)]

    @classmethod
    def from_wire(cls, pairs: Iterable[Iterable[int]], max_ms: float | None) -> LatencyHistogram:
        histogram = cls()
        for index, n in pairs:
            histogram.bins[int(index)] = histogram.bins.get(int(index), 0) + int(n)
            histogram.count += int(n)
        histogram.max_ms = max_ms
        return histogram
