"""Places in an experiment: data paths, how they are shown, and how a dotted path meets the model.

A sweep key, a `--set` path and a validation problem all name a field; this module turns
`faults[0].target.count` (or `faults.0.target.count`, snake_case or camelCase) into one
normalized path against the model's shape, and shows a path the way the file spells it.
`_Issue` is a problem at such a path, before it is given a file and a line.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from chaoslab.spec import Experiment
from chaoslab.specload.wording import _suggest

Path_ = tuple[str | int, ...]
"""A location inside the data: mapping keys as written, list indices as ints."""


@dataclass(frozen=True)
class _Issue:
    """A problem at a data path, before it is given a file and a line."""

    path: Path_
    message: str
    # A missing field has no line of its own: point at the mapping that lacks it.
    at_parent: bool = False


def display_path(path: Path_) -> str:
    """`faults[0].target.count`: keys joined by dots, list indices in brackets."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        # A key with line breaks or control characters is shown quoted, on one line.
        shown = part if part.isprintable() and part.strip() == part and part else repr(part)
        text += f".{shown}" if text else shown
    return text


def _is_prefix(prefix: Path_, path: Path_) -> bool:
    return len(prefix) <= len(path) and path[: len(prefix)] == prefix


def _set(data: Any, path: Path_, value: Any) -> None:
    node = data
    for part in path[:-1]:
        if isinstance(node, dict) and node.get(part) is None:
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def _core(annotation: Any) -> Any:
    """The annotation without Annotated metadata and without `| None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _model_members(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation stands for: one model, or a union of models."""
    core = _core(annotation)
    if isinstance(core, type) and issubclass(core, BaseModel):
        return [core]
    if get_origin(core) in (Union, types.UnionType):
        members = [_core(a) for a in get_args(core)]
        if members and all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
            return members
    return []


def _aliases(model: type[BaseModel]) -> dict[str, str]:
    """camelCase key -> python field name."""
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def _action_of(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("action")
    if info is None:
        return None
    args = get_args(info.annotation)
    return args[0] if get_origin(info.annotation) is Literal and args else None


def _fields_of(members: list[type[BaseModel]]) -> dict[str, Any]:
    """camelCase key -> annotation, over one model or all members of a union."""
    fields: dict[str, Any] = {}
    for member in members:
        for alias, name in _aliases(member).items():
            fields.setdefault(alias, member.model_fields[name].annotation)
    return fields


def _pick_member(members: list[type[BaseModel]], data: Any) -> list[type[BaseModel]]:
    """For the fault union: the member the item's `action` selects (all if unknown)."""
    if len(members) > 1 and isinstance(data, dict):
        for member in members:
            if _action_of(member) == data.get("action"):
                return [member]
    return members


# The per-action fault models (PodDeleteFault, ScaleFault, ...), from Experiment.faults.
_FAULT_MODELS = _model_members(get_args(Experiment.model_fields["faults"].annotation)[0])


class _PathProblem(Exception):
    """Internal: a dotted path (sweep key or --set) that does not name a field."""


@dataclass(frozen=True)
class _ResolvedPath:
    path: Path_  # normalized: camelCase keys, int indices, dict keys whole
    annotation: Any


def _split_dotted(text: str) -> list[str]:
    """Segments of `a.b[0].c` or `a.b.0.c`; `\\.` is a literal dot inside a segment."""
    segments: list[str] = []
    current = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] == ".":
            current += "."
            index += 2
            continue
        if char == ".":
            segments.append(current)
            current = ""
        elif char == "[":
            close = text.find("]", index)
            if close < 0:
                raise _PathProblem(f"unclosed '[' in {text!r}")
            if current:
                segments.append(current)
            segments.append(text[index + 1 : close])
            current = ""
            index = close + 1
            if index < len(text) and text[index] == ".":
                index += 1
            continue
        else:
            current += char
        index += 1
    segments.append(current)
    if any(segment == "" for segment in segments):
        raise _PathProblem(f"empty segment in the path {text!r}")
    return segments


def _resolve_path(text: str, data: Any) -> _ResolvedPath:
    """Check a dotted path against the model (and the data, for list items).

    Segments may be camelCase or snake_case. Under a free-form mapping (the sweep) the
    rest of the path is one key, so `sweep.workload.replicas` names the sweep entry
    `workload.replicas`. Raises _PathProblem with a did-you-mean when it does not exist.
    """
    segments = _split_dotted(text)
    annotation: Any = Experiment
    node = data
    path: list[str | int] = []
    position = 0
    while position < len(segments):
        segment = segments[position]
        core = _core(annotation)
        members = _model_members(core)
        where = display_path(tuple(path)) or "the top level"
        if members:
            chosen = _pick_member(members, node)
            fields = _fields_of(chosen)
            key = next((k for k in (segment, to_camel(segment)) if k in fields), None)
            if key is None:
                suggestion = _suggest(segment, list(fields))
                action = _action_of(chosen[0]) if len(chosen) == 1 else None
                if action is not None:
                    where = f"{where} ({action})"
                raise _PathProblem(
                    f"{where} has no field {segment!r} "
                    + (f"(did you mean {suggestion!r}?)" if suggestion else f"(fields: {', '.join(fields)})")
                )
            path.append(key)
            annotation = fields[key]
            node = node.get(key) if isinstance(node, dict) else None
        elif get_origin(core) is list:
            # ASCII digits only, and short: int() of 5000 digits raises, '٣' is a digit too.
            if not (segment.isascii() and segment.isdigit() and len(segment) <= 6):
                raise _PathProblem(
                    f"{where} is a list; expected an item number like {where}.0, got {segment!r}"
                )
            index = int(segment)
            length = len(node) if isinstance(node, list) else 0
            if index >= length:
                raise _PathProblem(
                    f"{where} has {length} item(s); there is no item {index} (items count from 0)"
                )
            path.append(index)
            annotation = get_args(core)[0]
            node = node[index]
        elif get_origin(core) is dict:
            key = ".".join(segments[position:])
            path.append(key)
            return _ResolvedPath(tuple(path), get_args(core)[1])
        else:
            raise _PathProblem(f"{where} is a single value; it has no field {segment!r}")
        position += 1
    return _ResolvedPath(tuple(path), annotation)
