"""Pydantic's validation errors in the user's words, at the user's field paths.

Pydantic knows what is wrong but not in a person's terms: its locations carry union tags
and validator names, and its messages leak internals. This module walks each error's
location against the data, drops the internal parts, merges union alternatives and words
the message as "expected X, got Y", with a did-you-mean for unknown keys and actions.
"""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from chaoslab.spec import FAULT_ACTIONS, Experiment
from chaoslab.specload.paths import (
    _FAULT_MODELS,
    Path_,
    _action_of,
    _aliases,
    _core,
    _fields_of,
    _Issue,
    _model_members,
    _pick_member,
)
from chaoslab.specload.wording import _did_you_mean, _show, _suggest


_FIELD_HINTS: dict[Path_, str] = {
    ("name",): "the experiment's name, e.g. name: web-pod-delete",
    ("at",): "when the fault fires after the measurement starts, e.g. at: 15s",
    ("replicas",): "the replica count to scale to, e.g. replicas: 5",
}

_PATTERN_HINTS = {
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$": (
        "a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"
    ),
    r"^/": "a URL path starting with /",
    r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$": "a storage quantity like 1Gi or 500Mi",
}


def _clean_location(loc: tuple[Any, ...], data: Any, keep_last: bool) -> tuple[Path_, bool]:
    """Pydantic's loc with its internal parts (union tags, validator names) dropped.

    Walks the data alongside: a part is kept when it is a key or index that exists there,
    or when it is the final, missing field of a `missing`/`extra` error.
    """
    node = data
    path: list[str | int] = []
    dropped = False
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        child = _child(node, part)
        if child is not None or (isinstance(node, dict) and part in node):
            path.append(part)
            node = child
        elif last and keep_last and isinstance(node, dict):
            path.append(part)
            node = None
        else:
            dropped = True
    return tuple(path), dropped


def _model_at(path: Path_, data: Any) -> list[type[BaseModel]]:
    """The model class(es) that validate the mapping at `path` (for key suggestions)."""
    annotation: Any = Experiment
    node = data
    for part in path:
        core = _core(annotation)
        members = _pick_member(_model_members(core), node)
        if members:
            fields = _fields_of(members)
            if not isinstance(part, str) or part not in fields:
                return []
            annotation = fields[part]
        elif get_origin(core) is list:
            annotation = get_args(core)[0]
        elif get_origin(core) is dict:
            annotation = get_args(core)[1]
        else:
            return []
        node = _child(node, part)
    return _pick_member(_model_members(annotation), node)


def _child(node: Any, part: str | int) -> Any:
    """node[part] when it exists, else None."""
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _unknown_key_message(key: str, parent: Path_, data: Any) -> str:
    models = _model_at(parent, data)
    if len(models) == 1 and _action_of(models[0]) is not None:
        action = _action_of(models[0])
        options = list(_aliases(models[0]))
        owners = [_action_of(m) for m in _FAULT_MODELS if key in _aliases(m)]
        belongs = f" (it is an option of {', '.join(str(o) for o in owners)})" if owners else ""
        return (
            f"{key!r} is not an option of {action}{belongs}; "
            f"{_did_you_mean(key, options) if not owners else ''}options of {action}: {', '.join(options)}"
        )
    candidates: list[str] = []
    for model in models:
        candidates += [a for a in _aliases(model) if a not in candidates]
    if not candidates:
        return f"unknown key {key!r}"
    suggestion = _suggest(key, candidates)
    if suggestion:
        spelled = " (keys are camelCase)" if suggestion == to_camel(key) and "_" in key else ""
        return f"unknown key {key!r}; did you mean {suggestion!r}?{spelled}"
    return f"unknown key {key!r}; expected one of: {', '.join(candidates)}"


def _expected_and_message(error: dict[str, Any]) -> tuple[str | None, str]:
    """(what was expected, the full message) for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = _show(error.get("input"))
    simple = {
        "int_parsing": "an integer",
        "int_type": "an integer",
        "int_from_float": "a whole number",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "text",
        "list_type": "a list",
        "dict_type": "a mapping (key: value)",
        "model_type": "a mapping (key: value)",
        "model_attributes_type": "a mapping (key: value)",
        "none_required": "null",
        "finite_number": "a finite number",
    }
    if kind in simple:
        expected = simple[kind]
        message = f"expected {expected}, got {got}"
        if kind == "string_type" and isinstance(error.get("input"), (bool, int, float)):
            message += " (put it in quotes to make it text)"
        return expected, message
    bounds = {
        "greater_than_equal": ("of at least", "ge"),
        "greater_than": ("above", "gt"),
        "less_than_equal": ("of at most", "le"),
        "less_than": ("below", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        expected = f"a value {words} {ctx.get(key)}"
        return expected, f"expected {expected}, got {got}"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "non-empty text", f"expected non-empty text, got {got}"
        return None, f"expected at least {ctx.get('min_length')} characters, got {got}"
    if kind == "string_too_long":
        length = len(error.get("input") or "")
        return None, f"expected at most {ctx.get('max_length')} characters, got {length}"
    if kind == "too_short":
        return None, f"expected at least {ctx.get('min_length')} item(s), got {got}"
    if kind == "too_long":
        return None, f"expected at most {ctx.get('max_length')} item(s)"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        expected = _PATTERN_HINTS.get(pattern, f"text matching {pattern}")
        return expected, f"expected {expected}, got {got}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        value = error.get("input")
        suggestion = _suggest(value, options) if isinstance(value, str) else None
        expected = f"one of: {', '.join(options)}"
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        return expected, f"expected {expected}, got {got}{hint}"
    if kind in {"value_error", "assertion_error"}:
        cause = ctx.get("error")
        text = str(cause) if cause is not None else error.get("msg", "")
        text = re.sub(r"^(Value|Assertion) error, ", "", text)
        return None, text
    # Any other pydantic error: its message in our form ("Input should be X" -> "expected X").
    text = re.sub(r"^Input should be ", "expected ", str(error.get("msg", "an invalid value")))
    return None, f"{text}, got {got}"


def _issues_from_validation(exc: ValidationError, data: Any) -> list[_Issue]:
    """Pydantic's errors as issues in the user's spelling, union alternatives merged."""
    grouped: dict[tuple[Path_, bool], list[tuple[Any, bool]]] = {}
    issues: list[_Issue] = []
    for error in exc.errors(include_url=False):
        kind = error["type"]
        path, dropped = _clean_location(tuple(error["loc"]), data, kind in {"missing", "extra_forbidden"})
        if kind == "extra_forbidden":
            issues.append(_Issue(path, _unknown_key_message(str(path[-1]), path[:-1], data)))
        elif kind == "missing":
            hint = _FIELD_HINTS.get(path[-1:]) if path else None
            owner = _model_at(path[:-1], data)
            action = _action_of(owner[0]) if len(owner) == 1 else None
            message = f"missing (required for action {action})" if action else "missing (required)"
            if path[-1:] == ("name",) and len(path) == 1:
                message = "missing (required)"
            issues.append(_Issue(path, f"{message}: {hint}" if hint else message, at_parent=True))
        elif kind == "union_tag_invalid":
            tag = str((error.get("ctx") or {}).get("tag"))
            options = ", ".join(FAULT_ACTIONS)
            issues.append(
                _Issue(
                    (*path, "action"),
                    f"unknown action {tag!r} ({_did_you_mean(tag, FAULT_ACTIONS)}expected one of: {options})",
                )
            )
        elif kind == "union_tag_not_found":
            issues.append(
                _Issue(
                    (*path, "action"),
                    f"missing (required): the fault's action, one of: {', '.join(FAULT_ACTIONS)}",
                    at_parent=True,
                )
            )
        else:
            grouped.setdefault((path, dropped), []).append((error, dropped))
    for (path, dropped), errors in grouped.items():
        pieces = [_expected_and_message(error) for error, _ in errors]
        if dropped and len(pieces) > 1 and all(expected for expected, _ in pieces):
            expectations = list(dict.fromkeys(expected for expected, _ in pieces))
            got = _show(errors[0][0].get("input"))
            issues.append(_Issue(path, f"expected {' or '.join(str(e) for e in expectations)}, got {got}"))
        else:
            for message in dict.fromkeys(message for _, message in pieces):
                issues.append(_Issue(path, message))
    return issues
