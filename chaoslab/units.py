"""Parsing of the human units experiment files use: durations and percentages.

Kept apart from the spec model so the parsers can be property-tested on their own and
reused by `--set` overrides, the plan and the CLI. Every parser raises `ValueError` (and
nothing else) with a message that says what was expected, so the spec loader can show it
next to the offending line.
"""

from __future__ import annotations

import math
import re

# One `<number><unit>` part of a duration; a duration is one part or several in
# decreasing unit order (`1m30s`, `1h2m`), as Go's time.ParseDuration and kubectl print.
_DURATION_PART = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:ms|h|m|s)"
_DURATION = re.compile(rf"^\s*(?:{_DURATION_PART})+\s*$")
_DURATION_PARTS = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<unit>ms|h|m|s)")
DURATION_PATTERN = _DURATION.pattern
"""The regular expression a duration string must match (used by the JSON Schema)."""

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Units from largest to smallest: parts of a compound duration must follow this order.
_UNIT_ORDER = ("h", "m", "s", "ms")
# Longest duration an experiment may name: one week. Anything longer is a typo.
MAX_DURATION_SECONDS = 7 * 24 * 3600.0

_DURATION_EXPECTED = "expected a duration like 250ms, 30s, 5m, 1h or 1m30s"


def _show(value: object) -> str:
    """A short repr for error messages (a 10 kB string must not flood the terminal)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_float(value: int | float, expected: str) -> float:
    try:
        return float(value)
    except OverflowError as exc:  # int too large for a float, e.g. 10**400
        raise ValueError(f"{expected}, got a number too large") from exc


def parse_duration(value: object) -> float:
    """Seconds from `250ms`, `30s`, `5m`, `1h`, `1m30s`, or a non-negative number of seconds.

    Raises ValueError with a message that says what was expected.
    """
    if isinstance(value, bool):
        raise ValueError(f"{_DURATION_EXPECTED}, got {_show(value)}")
    if isinstance(value, (int, float)):
        seconds = _as_float(value, _DURATION_EXPECTED)
    elif isinstance(value, str):
        if not _DURATION.match(value):
            raise ValueError(f"{_DURATION_EXPECTED}, got {_show(value)}")
        seconds = 0.0
        previous_rank = -1
        for part in _DURATION_PARTS.finditer(value):
            rank = _UNIT_ORDER.index(part["unit"])
            if rank <= previous_rank:
                raise ValueError(
                    f"{_DURATION_EXPECTED} (units from largest to smallest, each once), got {_show(value)}"
                )
            previous_rank = rank
            seconds += float(part["number"]) * _UNIT_SECONDS[part["unit"]]
    else:
        raise ValueError(f"{_DURATION_EXPECTED}, got {_show(value)}")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {_show(value)}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"expected a duration of at most 7 days (168h), got {_show(value)}")
    return seconds


_PERCENT = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*%\s*$")
PERCENT_PATTERN = r"^\s*(?:100(?:\.0+)?|[0-9]{1,2}(?:\.[0-9]+)?|\.[0-9]+)\s*%\s*$"
"""A regular expression for percentage strings from 0% to 100% (used by the JSON Schema;
the parser accepts any number before `%` so it can say the value is out of range)."""

_PERCENT_EXPECTED = "expected a percentage like 99% or 0.99"


def parse_percent(value: object) -> float:
    """A fraction in [0, 1] from `99%`, `99.9%` or a number in [0, 1] such as `0.99`.

    Raises ValueError with a message that says what was expected.
    """
    if isinstance(value, bool):
        raise ValueError(f"{_PERCENT_EXPECTED}, got {_show(value)}")
    if isinstance(value, (int, float)):
        fraction = _as_float(value, _PERCENT_EXPECTED)
    elif isinstance(value, str):
        match = _PERCENT.match(value)
        if not match:
            raise ValueError(f"{_PERCENT_EXPECTED}, got {_show(value)}")
        fraction = float(match["number"]) / 100.0
    else:
        raise ValueError(f"{_PERCENT_EXPECTED}, got {_show(value)}")
    if not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ValueError(f"expected a percentage between 0% and 100%, got {_show(value)}")
    return fraction


def format_duration(seconds: float) -> str:
    """Short human form of a duration: 250ms, 30s, 5m30s, 1h2m.

    The result parses back with `parse_duration` (to the shown precision: milliseconds
    below a minute, whole seconds below an hour, whole
    minutes above).
    """
    if seconds < 0.9995:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 59.9995:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"


def format_percent(fraction: float) -> str:
    """A fraction as a percentage that parses back with `parse_percent`: 0.995 -> 99.5%.

    Shown to 1/10000 of a percent, never in exponent notation (which does not parse).
    """
    return f"{fraction * 100:.4f}".rstrip("0").rstrip(".") + "%"


# A CPU quantity as the Kubernetes API writes it: cores (`1`, `0.5`) or millicores (`250m`).
_CPU = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<milli>m?)\s*$")
_CPU_EXPECTED = "expected a CPU quantity like 250m, 0.5 or 1 (cores)"


def parse_cpu(value: object) -> float:
    """Cores from a Kubernetes CPU quantity (`250m` -> 0.25, `1` -> 1.0); above 0."""
    if isinstance(value, bool):
        raise ValueError(f"{_CPU_EXPECTED}, got {_show(value)}")
    if isinstance(value, (int, float)):
        cores = _as_float(value, _CPU_EXPECTED)
    elif isinstance(value, str) and (match := _CPU.match(value)):
        cores = float(match["number"]) / (1000.0 if match["milli"] else 1.0)
    else:
        raise ValueError(f"{_CPU_EXPECTED}, got {_show(value)}")
    if not math.isfinite(cores) or cores <= 0:
        raise ValueError(f"{_CPU_EXPECTED} above 0, got {_show(value)}")
    return cores
