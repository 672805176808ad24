"""Durations and percentages as people write them in experiment files."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaoslab.units import (
    MAX_DURATION_SECONDS,
    format_duration,
    format_percent,
    parse_duration,
    parse_percent,
)

# Generous: the machine is shared and noisy; these only catch pathological slowness.
PROPERTY_SETTINGS = settings(max_examples=300, deadline=timedelta(seconds=2))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        (" 40s ", 40.0),
        (15, 15.0),
        (0.1, 0.1),
        (0, 0.0),
        ("168h", MAX_DURATION_SECONDS),
    ],
)
def test_parse_duration_accepts_the_documented_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("40 sec", "expected a duration like 250ms"),
        ("40", "expected a duration like 250ms"),
        ("-5s", "expected a duration like 250ms"),
        ("5s30m", "largest to smallest"),
        ("1s1s", "largest to smallest"),
        (-1, "non-negative"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([5], "expected a duration"),
        ("169h", "at most 7 days"),
        (10**400, "too large"),
        ("٣s", "expected a duration"),  # a non-ASCII digit is not a number here
    ],
)
def test_parse_duration_rejects_with_a_message_that_says_what_was_expected(
    value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("99%", 0.99), ("99.9%", 0.999), (0.99, 0.99), (0.5, 0.5), (1, 1.0), ("100%", 1.0), ("0%", 0.0)],
)
def test_parse_percent_accepts_percent_strings_and_fractions(text: object, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("120%", "between 0% and 100%"),
        (1.5, "between 0% and 100%"),
        (-0.1, "between 0% and 100%"),
        ("50 percent", "like 99% or 0.99"),
        ("0.99", "like 99% or 0.99"),  # text needs the % sign; a fraction is a number
        (False, "like 99% or 0.99"),
        (float("nan"), "between 0% and 100%"),
        (10**400, "too large"),
    ],
)
def test_parse_percent_rejects_out_of_range_and_malformed(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_percent(value)


def _error_tolerance(seconds: float) -> float:
    """How far format_duration may round: ms below a minute, s below an hour, else min."""
    if seconds < 59.9995:
        return 0.0005 + 1e-9
    if seconds < 3599.5:
        return 0.5 + 1e-9
    return 30.0 + 1e-9


@PROPERTY_SETTINGS
@given(st.floats(min_value=0, max_value=MAX_DURATION_SECONDS, allow_nan=False))
def test_format_duration_parses_back_to_the_shown_precision(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == pytest.approx(seconds, abs=_error_tolerance(seconds))


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.sampled_from(["h", "m", "s", "ms"])),
        min_size=1,
        max_size=4,
        unique_by=lambda part: part[1],
    )
)
def test_compound_durations_sum_their_parts(parts: list[tuple[int, str]]) -> None:
    order = ["h", "m", "s", "ms"]
    parts = sorted(parts, key=lambda part: order.index(part[1]))
    text = "".join(f"{number}{unit}" for number, unit in parts)
    unit_seconds = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    assert parse_duration(text) == pytest.approx(sum(n * unit_seconds[u] for n, u in parts))


@PROPERTY_SETTINGS
@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_format_percent_parses_back(fraction: float) -> None:
    assert parse_percent(format_percent(fraction)) == pytest.approx(fraction, abs=1e-6)


_ANYTHING = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.hms% -", max_size=20),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@PROPERTY_SETTINGS
@given(_ANYTHING)
def test_parse_duration_returns_a_bounded_number_or_raises_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError:
        return
    assert math.isfinite(seconds)
    assert 0 <= seconds <= MAX_DURATION_SECONDS


@PROPERTY_SETTINGS
@given(_ANYTHING)
def test_parse_percent_returns_a_fraction_or_raises_value_error(value: object) -> None:
    try:
        fraction = parse_percent(value)
    except ValueError:
        return
    assert 0.0 <= fraction <= 1.0
