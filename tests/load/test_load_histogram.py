"""The latency histogram: percentiles within its stated error, merges that lose nothing."""

from __future__ import annotations

import math
import random

import pytest

from chaoslab.load.histogram import RELATIVE_ERROR, LatencyHistogram

QUANTILES = (0.5, 0.95, 0.99)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def latencies(seed: int, n: int) -> list[float]:
    """Skewed like real latencies: mostly a few ms, a long tail up to seconds."""
    rng = random.Random(seed)
    fast = [rng.lognormvariate(math.log(3.0), 0.6) for _ in range(n * 9 // 10)]
    slow = [rng.uniform(200.0, 2500.0) for _ in range(n - len(fast))]
    return fast + slow


def histogram_of(values: list[float]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    return histogram


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_the_relative_error_of_exact_ones(seed: int) -> None:
    values = latencies(seed, 20_000)
    histogram = histogram_of(values)
    for q in QUANTILES:
        exact = nearest_rank(values, q)
        assert abs(histogram.quantile(q) - exact) <= RELATIVE_ERROR * exact + 1e-12, q  # type: ignore[operator]
    assert histogram.max_ms == max(values)
    assert histogram.count == len(values)
    # compact: a few hundred bins for latencies spanning three orders of magnitude
    assert len(histogram.bins) < 700


def test_merging_equals_one_histogram_of_everything() -> None:
    first, second = latencies(4, 5000), latencies(5, 3000)
    merged = histogram_of(first)
    merged.merge(histogram_of(second))
    whole = histogram_of(first + second)
    assert merged.bins == whole.bins and merged.count == whole.count and merged.max_ms == whole.max_ms
    assert [merged.quantile(q) for q in QUANTILES] == [whole.quantile(q) for q in QUANTILES]


def test_merged_percentiles_come_from_the_merged_distribution() -> None:
    # 90 fast requests in one process, 10 slow ones in another: p95 is slow, which no
    # average of per-process percentiles would give.
    fast, slow = histogram_of([1.0] * 90), histogram_of([100.0] * 10)
    fast.merge(slow)
    assert fast.quantile(0.5) == pytest.approx(1.0, rel=RELATIVE_ERROR)
    assert fast.quantile(0.95) == pytest.approx(100.0, rel=RELATIVE_ERROR)


def test_wire_round_trip_keeps_everything() -> None:
    histogram = histogram_of(latencies(6, 1000))
    back = LatencyHistogram.from_wire(histogram.to_wire(), histogram.max_ms)
    assert back.bins == histogram.bins and back.count == histogram.count and back.max_ms == histogram.max_ms


def test_edges_empty_single_zero() -> None:
    assert LatencyHistogram().quantile(0.5) is None
    single = histogram_of([7.0])
    for q in QUANTILES:
        assert single.quantile(q) == pytest.approx(7.0, rel=RELATIVE_ERROR)
        assert single.quantile(q) <= 7.0  # type: ignore[operator]  # never above the maximum
    zero = histogram_of([0.0, 0.0])
    assert zero.quantile(0.99) == 0.0 and zero.max_ms == 0.0
    with pytest.raises(ValueError):
        single.quantile(0.0)
