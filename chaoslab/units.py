"""Parsing of the human units experiment files use: durations and percentages.

Kept apart from the spec model so the parsers can be property-tested on their own and
reused by `--set` overrides and the CLI.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longest duration an experiment may name: one week. Anything longer is a typo.
MAX_DURATION_SECONDS = 7 * 24 * 3600.0


def parse_duration(value: object) -> float:
    """Seconds from `250ms`, `30s`, `5m`, `1h`, or a plain non-negative number of seconds.

    Raises ValueError with a message that says what was expected.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 250ms, 30s, 5m or 1h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration like 250ms, 30s, 5m or 1h, got {value!r}")
        seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"]]
    else:
        raise ValueError(f"expected a duration like 250ms, 30s, 5m or 1h, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"expected a duration of at most 7 days, got {value!r}")
    return seconds


_PERCENT = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?|\.\d+)\s*%\s*$")


def parse_percent(value: object) -> float:
    """A fraction in [0, 1] from `99%`, `99.9%` or a number in [0, 1] such as `0.99`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage like 99% or 0.99, got {value!r}")
    if isinstance(value, (int, float)):
        fraction = float(value)
    elif isinstance(value, str):
        match = _PERCENT.match(value)
        if not match:
            raise ValueError(f"expected a percentage like 99% or 0.99, got {value!r}")
        fraction = float(match["number"]) / 100.0
    else:
        raise ValueError(f"expected a percentage like 99% or 0.99, got {value!r}")
    if not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"expected a percentage between 0% and 100%, got {value!r}")
    return fraction


def format_duration(seconds: float) -> str:
    """Short human form of a duration: 250ms, 30s, 5m30s, 1h2m."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"
