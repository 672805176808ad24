"""How a problem message shows what a user wrote, and guesses what they meant.

Every message of the loader quotes a value (`_show`) or suggests a spelling
(`_did_you_mean`); one module so they all read alike.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

from pydantic.alias_generators import to_camel

# Longest value shown in a message.
_SHOW_LIMIT = 60


def _show(value: Any) -> str:
    """A value as a user wrote it, short: 'abc', 5, true, null, a list [1, 2]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        text = "a list " + _flow(value)
    elif isinstance(value, dict):
        text = "a mapping " + _flow(value)
    else:
        text = repr(value)
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def _flow(value: Any) -> str:
    """A list or mapping on one line (JSON is valid YAML flow syntax)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def _suggest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate a typo most likely meant, or None."""
    if not isinstance(word, str) or not candidates:
        return None
    lowered = {c.lower(): c for c in candidates}
    for variant in (word, to_camel(word), word.replace("-", "").replace("_", "")):
        if variant.lower() in lowered:
            return lowered[variant.lower()]
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if close:
        return close[0]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    suggestion = _suggest(word, candidates)
    return f"did you mean {suggestion!r}? " if suggestion else ""
