"""Reading an experiment file: YAML text to a validated `Experiment`, every problem located.

Why a module apart from the model: a person fixing a file needs *all* of its problems at
once, each with `file:line`, the field path in the file's own spelling, what was found
and what was expected. Pydantic knows what is wrong but not where, and its raw messages
leak internals (union tags, validator names). This module parses YAML itself (safe tags
only, with limits against hostile input), remembers the line of every key, translates
pydantic's errors into `SpecProblem`s, and adds the checks that span several fields
(faults within the timeline, target counts against replicas and nodes, sweep values).

Public API: `load_experiment`, `parse_override`, `experiment_json_schema`.
"""

from __future__ import annotations

import ast
import copy
import difflib
import itertools
import json
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from chaoslab import specrules
from chaoslab.errors import SpecError, SpecProblem
from chaoslab.plan import (
    MAX_FAULT_FIRINGS,
    firing_count,
    firing_times,
    replicas_at,
    sweep_point_count,
    sweep_points,
)
from chaoslab.spec import (
    FAULT_ACTIONS,
    NODE_ACTIONS,
    POD_ACTIONS,
    Experiment,
)
from chaoslab.specstateful import stateful_problems
from chaoslab.units import format_duration

# --- limits against hostile input -----------------------------------------------------
# An experiment file is a few kilobytes; these bounds are orders of magnitude above any
# real file and keep parsing of a hostile one under a second.

# Largest file read at all (1 MiB).
MAX_FILE_BYTES = 1024 * 1024
# Deepest nesting of mappings/lists; the deepest real path is about 7 levels
# (cluster.kubernetes.nodeProvider..., workload.readinessProbe.httpGet.path).
MAX_DEPTH = 40
# Most YAML nodes after expanding aliases: stops "billion laughs" alias bombs, which are
# tiny on disk and exponential once expanded.
MAX_NODES = 20_000
# Most sweep points (cartesian product size) an experiment may expand to.
MAX_SWEEP_POINTS = 1000
# Longest value shown in a message.
_SHOW_LIMIT = 60

# YAML tags a file may use: plain data only. Timestamps are kept as their text (no field
# is a date, and `2001-02-30` would otherwise crash the date constructor).
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null")}
_TIMESTAMP_TAG = f"{_TAG}timestamp"
_MERGE_TAG = f"{_TAG}merge"
_MAP_TAG = f"{_TAG}map"
_SEQ_TAG = f"{_TAG}seq"

Path_ = tuple[str | int, ...]
"""A location inside the data: mapping keys as written, list indices as ints."""


# --- YAML with line numbers -----------------------------------------------------------


class _Rejected(Exception):
    """Internal: the document cannot be read at all (a fatal, located problem)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing nodes only, with a nesting and a node-count limit.

    The composer recurses per nesting level; without a limit a file of 100 000 `[`
    would exhaust Python's stack.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Rejected(
                    mark.line + 1,
                    f"nested deeper than {MAX_DEPTH} levels; an experiment is a few levels deep",
                )
            if self._composed > MAX_NODES:
                mark = self.peek_event().start_mark
                raise _Rejected(
                    mark.line + 1, f"more than {MAX_NODES} YAML values; an experiment is far smaller"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass(frozen=True)
class _Lines:
    """Where one entry sits: the line of its key (or list item) and of its value."""

    key: int
    value: int


@dataclass
class _Document:
    data: Any
    lines: dict[Path_, _Lines]
    problems: list[tuple[Path_, int, str]]  # (path, line, message) found while reading


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


class _Builder:
    """Turns a composed node graph into plain data, recording lines and read problems.

    Aliases are expanded here, so here is where expansion is counted and cut off.
    """

    def __init__(self) -> None:
        self.lines: dict[Path_, _Lines] = {}
        self.problems: list[tuple[Path_, int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._visited = 0
        self._active: set[int] = set()

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        line = node.start_mark.line + 1
        self._visited += 1
        if self._visited > MAX_NODES:
            raise _Rejected(
                line,
                f"the document expands to more than {MAX_NODES} values "
                "(an alias bomb? anchors and aliases are for small reuse)",
            )
        if depth > MAX_DEPTH:
            raise _Rejected(line, f"nested deeper than {MAX_DEPTH} levels (through aliases)")
        if id(node) in self._active:
            self.problems.append((path, line, "an alias refers to a mapping or list that contains it"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path, depth)
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _check_tag(self, node: yaml.Node, expected: str, path: Path_) -> bool:
        if node.tag == expected:
            return True
        self.problems.append(
            (
                path,
                node.start_mark.line + 1,
                f"the YAML tag {_tag_name(node.tag)} is not allowed: experiment files hold plain "
                "data (mappings, lists, text, numbers, true/false, null)",
            )
        )
        return False

    def _sequence(self, node: yaml.SequenceNode, path: Path_, depth: int) -> list[Any] | None:
        if not self._check_tag(node, _SEQ_TAG, path):
            return None
        items = []
        for index, item in enumerate(node.value):
            item_line = item.start_mark.line + 1
            self.lines[(*path, index)] = _Lines(item_line, item_line)
            items.append(self.build(item, (*path, index), depth + 1))
        return items

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any] | None:
        if not self._check_tag(node, _MAP_TAG, path):
            return None
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged.update(self._merge_sources(value_node, path, depth))
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in first_line:
                self.problems.append(
                    (
                        (*path, key),
                        key_line,
                        f"duplicate key {key!r} (first at line {first_line[key]}, again at line "
                        f"{key_line}); keep one",
                    )
                )
            else:
                first_line[key] = key_line
            self.lines[(*path, key)] = _Lines(key_line, value_node.start_mark.line + 1)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        # Explicit keys win over merged ones (YAML merge key semantics).
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def _merge_sources(self, node: yaml.Node, path: Path_, depth: int) -> dict[str, Any]:
        """The mapping(s) a `<<:` key merges in; earlier sources win over later ones."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.problems.append(
                    (path, source.start_mark.line + 1, "a merge key (<<) must name a mapping")
                )
                continue
            value = self.build(source, path, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged

    def _key(self, node: yaml.Node, path: Path_) -> str | None:
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.ScalarNode):
            self.problems.append((path, line, "a key must be a plain name, not a mapping or a list"))
            return None
        if node.tag not in _SCALAR_TAGS and node.tag != _TIMESTAMP_TAG:
            self._check_tag(node, _TAG + "str", path)
            return None
        # The key as written: `on:` or `1:` are names here, not booleans or numbers.
        return str(node.value)

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        if node.tag == _TIMESTAMP_TAG:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self._check_tag(node, _TAG + "str", path)
            return None
        construct = yaml.constructor.SafeConstructor.yaml_constructors[node.tag]
        try:
            return construct(self._constructor, node)
        except (ValueError, KeyError, yaml.YAMLError) as exc:
            # An explicit tag on text that does not fit it (`!!int abc`, `!!bool maybe`),
            # or an integer beyond Python's digit limit.
            self.problems.append(
                (
                    path,
                    node.start_mark.line + 1,
                    f"cannot read {_show(node.value)} as {_tag_name(node.tag)} ({type(exc).__name__})",
                )
            )
            return None


def _yaml_problem_message(exc: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        message = f"invalid YAML: {problem}"
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if "'\\t'" in problem:
            message += "; indent with spaces, YAML does not allow tabs"
        return line, message
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return line, (
            f"a control character (U+{exc.character:04X}) YAML does not allow in text; "
            "remove it or write it as an escape in a double-quoted string"
        )
    return None, f"invalid YAML: {exc}"


def _parse_yaml(text: str) -> _Document | None:
    """The single YAML document in `text` as data with lines; None when there is none.

    Raises _Rejected for unreadable or hostile input.
    """
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text)  # checks for unprintable characters at once
        if not loader.check_node():
            return None
        node = loader.get_node()
        if loader.check_node():
            line = loader.peek_event().start_mark.line + 1
            raise _Rejected(
                line,
                f"a second YAML document starts at line {line}; an experiment file holds "
                "exactly one (remove the '---' separator or split the file)",
            )
    except yaml.YAMLError as exc:
        line, message = _yaml_problem_message(exc, text)
        raise _Rejected(line, message) from exc
    except RecursionError as exc:  # belt and braces: the depth limit should come first
        raise _Rejected(None, f"nested too deeply to read (limit {MAX_DEPTH} levels)") from exc
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return None
    builder = _Builder()
    root_line = node.start_mark.line + 1
    builder.lines[()] = _Lines(root_line, root_line)
    data = builder.build(node, (), 0)
    return _Document(data=data, lines=builder.lines, problems=builder.problems)


def _read_text(path: Path) -> str:
    """The file's text, or _Rejected when it is missing, huge, binary or not UTF-8."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError as exc:
        raise _Rejected(None, "is a directory; expected an experiment YAML file") from exc
    except OSError as exc:
        raise _Rejected(None, f"cannot read the file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise _Rejected(
            None,
            f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; an experiment file is a few KiB",
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise _Rejected(
            raw.count(b"\n", 0, nul) + 1,
            f"binary content (a NUL byte at offset {nul}); expected a YAML text file",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Rejected(
            raw.count(b"\n", 0, exc.start) + 1,
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
        ) from exc


# --- paths and the model's shape ------------------------------------------------------


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


# --- overrides -----------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """`PATH=VALUE` -> (PATH, value parsed as YAML: `3` is 3, `[1, 2]` a list, `` null).

    Raises SpecError naming the override when it has no `=`, no path, or a value that
    is not readable YAML.
    """
    label = f"--set {text}"
    path, separator, raw_value = text.partition("=")
    path = path.strip()
    if not separator or not path:
        raise SpecError([SpecProblem(label, None, "", "expected PATH=VALUE, e.g. --set workload.replicas=2")])
    if len(raw_value.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise SpecError([SpecProblem(label, None, path, "the value is too large")])
    if "\x00" in raw_value:
        raise SpecError([SpecProblem(label, None, path, "the value contains a NUL character")])
    try:
        document = _parse_yaml(raw_value)
    except _Rejected as exc:
        raise SpecError([SpecProblem(label, None, path, exc.message)]) from exc
    if document is None:
        return path, None
    if document.problems:
        raise SpecError([SpecProblem(label, None, path, message) for _, _, message in document.problems])
    return path, document.data


def _apply_override(data: dict[str, Any], text: str) -> Path_:
    """Set one override in the raw data; returns its normalized path. Raises SpecError."""
    label = f"--set {text}"
    raw_path, value = parse_override(text)
    try:
        resolved = _resolve_path(raw_path, data)
    except _PathProblem as exc:
        raise SpecError([SpecProblem(label, None, raw_path, str(exc))]) from exc
    node: Any = data
    for depth, part in enumerate(resolved.path[:-1]):
        # _resolve_path checked list indices against this data; mappings may be missing.
        child = node[part] if isinstance(part, int) else node.get(part)
        wanted = list if isinstance(resolved.path[depth + 1], int) else dict
        if child is None and wanted is dict:
            child = node[part] = {}
        if not isinstance(child, wanted):
            shown = display_path(resolved.path[: depth + 1])
            kind = "a list" if wanted is list else "a mapping"
            raise SpecError(
                [
                    SpecProblem(
                        label,
                        None,
                        display_path(resolved.path),
                        f"cannot set it: {shown} in the file is {_show(child)}, not {kind}",
                    )
                ]
            )
        node = child
    node[resolved.path[-1]] = value
    return resolved.path


# --- translating pydantic's errors -----------------------------------------------------


@dataclass(frozen=True)
class _Issue:
    """A problem at a data path, before it is given a file and a line."""

    path: Path_
    message: str
    # A missing field has no line of its own: point at the mapping that lacks it.
    at_parent: bool = False


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


# --- checks across fields --------------------------------------------------------------


def _node_names(nodes: int) -> list[str]:
    """Sim node names: node-1 .. node-N (as chaoslab.cluster.sim names them)."""
    return [f"node-{number}" for number in range(1, nodes + 1)]


def _cross_field_issues(experiment: Experiment, base_dir: Path) -> list[_Issue]:
    """Checks that span fields: faults against the timeline, replicas and nodes; files."""
    issues: list[_Issue] = []
    duration = experiment.timeline.duration
    for index, fault in enumerate(experiment.faults):
        time_issues = _fault_time_issues(experiment, index)
        if time_issues:
            issues += time_issues
            continue
        if fault.action in POD_ACTIONS:
            issues += _pod_target_issues(experiment, index)
        if fault.action in NODE_ACTIONS and experiment.cluster.backend == "sim":
            issues += _node_target_issues(experiment, index)
    issues += [_Issue(path, message) for path, message in stateful_problems(experiment)]
    workload = experiment.workload
    if experiment.cluster.backend == "kubernetes" and workload.manifests is None and _has_no_shell(workload.image):
        for index, fault in enumerate(experiment.faults):
            if fault.action == "container-kill":
                issues.append(
                    _Issue(
                        ("faults", index, "action"),
                        f"container-kill is unsupported for image {workload.image}: it runs `kill` "
                        "through /bin/sh in the container, and this image has no shell; use "
                        "pod-delete, or an image with a shell (e.g. its :debug variant)",
                    )
                )
    measure = experiment.measure
    if measure.slo.window < measure.bucket:
        issues.append(
            _Issue(
                ("measure", "slo", "window"),
                f"{format_duration(measure.slo.window)} is shorter than measure.bucket "
                f"({format_duration(measure.bucket)}); expected at least one bucket, e.g. 3s",
            )
        )
    locustfile = experiment.load.locustfile
    if locustfile is not None:
        found = base_dir / locustfile
        if not found.is_file():
            issues.append(
                _Issue(
                    ("load", "locustfile"),
                    f"file not found: {found} (paths are relative to the experiment file's folder)",
                )
            )
        else:
            issues += _locustfile_issues(found)
    issues += [_Issue(path, message) for path, message in specrules.stage_issues(experiment, base_dir)]
    issues += [_Issue(path, message) for path, message in specrules.autoscaling_issues(experiment)]
    for number, manifest in enumerate(experiment.workload.manifests or []):
        found = base_dir / manifest
        if not found.is_file():
            issues.append(
                _Issue(
                    ("workload", "manifests", number),
                    f"file not found: {found} (paths are relative to the experiment file's folder)",
                )
            )
    return issues


# Images known to ship no /bin/sh: Google's distroless (except the :debug tags, which add
# busybox), Chainguard's static, the pause image, and scratch.
_SHELL_LESS_IMAGE = re.compile(r"(^|/)distroless/|(^|/)chainguard/static$|(^|/)pause$|^scratch$")


def _has_no_shell(image: str) -> bool:
    """True for an image known to have no shell; False when it has one or is unknown."""
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    return not tag.startswith("debug") and bool(_SHELL_LESS_IMAGE.search(name))


def _locustfile_issues(found: Path) -> list[_Issue]:
    """A locustfile that cannot work, found before anything is deployed.

    Compiled, never imported: importing would run the user's code and Locust's gevent
    patching in the engine's process. A file that neither defines nor imports a class
    named like a Locust User (`...User`) would make Locust exit with "No User class found".
    """
    where = ("load", "locustfile")
    try:
        tree = ast.parse(found.read_bytes(), filename=str(found))
    except SyntaxError as exc:
        return [_Issue(where, f"{found}:{exc.lineno}: Python syntax error: {exc.msg}")]
    except (OSError, ValueError) as exc:
        return [_Issue(where, f"cannot read {found}: {exc}")]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(_ends_in_user(base) for base in node.bases):
            return []
        if isinstance(node, ast.ImportFrom) and any(alias.name.endswith("User") for alias in node.names):
            return []
    return [
        _Issue(
            where,
            f"{found} defines no Locust User class; expected e.g. "
            "`class WebUser(FastHttpUser):` with at least one @task",
        )
    ]


def _ends_in_user(base: ast.expr) -> bool:
    name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
    return name.endswith("User")


def _fault_time_issues(experiment: Experiment, index: int) -> list[_Issue]:
    fault = experiment.faults[index]
    duration = experiment.timeline.duration
    path: Path_ = ("faults", index)
    end = format_duration(duration)
    if fault.at >= duration:
        return [
            _Issue(
                (*path, "at"),
                f"{format_duration(fault.at)} is at or after the end of the measurement "
                f"(timeline.duration: {end}); expected a time below {end}",
            )
        ]
    if fault.repeat is not None and fault.every is None:
        return [
            _Issue((*path, "repeat"), "repeat needs every (the interval between firings), e.g. every: 10s")
        ]
    if fault.every is None:
        return []
    uncapped = firing_count(fault.model_copy(update={"repeat": None}), duration)
    if fault.repeat is not None and fault.repeat > uncapped:
        last = fault.at + (fault.repeat - 1) * fault.every
        return [
            _Issue(
                (*path, "repeat"),
                f"{fault.repeat} firings every {format_duration(fault.every)} from "
                f"{format_duration(fault.at)} last until {format_duration(last)}, after the end of "
                f"the measurement ({end}); expected at most {uncapped}, or a longer timeline.duration",
            )
        ]
    fires = min(uncapped, fault.repeat or uncapped)
    if fires > MAX_FAULT_FIRINGS:
        return [
            _Issue(
                (*path, "every"),
                f"every {format_duration(fault.every)} fires {fires} times in {end}; expected at most "
                f"{MAX_FAULT_FIRINGS} firings (a longer interval, or repeat)",
            )
        ]
    return []


def _pod_target_issues(experiment: Experiment, index: int) -> list[_Issue]:
    fault = experiment.faults[index]
    target = fault.target
    # The firing with the fewest desired replicas (a scale fault may shrink them).
    at, replicas = min(
        ((time, replicas_at(experiment, time, index)) for time in firing_times(fault, experiment.timeline.duration)),
        key=lambda firing: firing[1],
    )
    scaled = replicas != experiment.workload.replicas
    of = (
        f"the {replicas} replica(s) desired at {format_duration(at)} (after scale)"
        if scaled
        else f"workload.replicas ({replicas})"
    )
    if target.count is not None and target.count > replicas:
        return [
            _Issue(
                ("faults", index, "target", "count"),
                f"{target.count} is above {of}; expected at most {replicas}",
            )
        ]
    if replicas == 0 and target.name is None:
        return [_Issue(("faults", index, "target"), f"no pods to hit: {of} is 0")]
    return []


def _node_target_issues(experiment: Experiment, index: int) -> list[_Issue]:
    fault = experiment.faults[index]
    target = fault.target
    nodes = experiment.cluster.sim.nodes
    if target.count is not None and target.count > nodes:
        return [
            _Issue(
                ("faults", index, "target", "count"),
                f"{target.count} is above the {nodes} node(s) of cluster.sim.nodes; expected at most {nodes}",
            )
        ]
    names = _node_names(nodes)
    if target.name is not None and target.name not in names:
        last = names[-1]
        return [
            _Issue(
                ("faults", index, "target", "name"),
                f"unknown node {target.name!r}; {_did_you_mean(target.name, names)}the sim cluster "
                f"has {', '.join(names) if nodes <= 4 else f'node-1 .. {last}'}",
            )
        ]
    return []


# --- the sweep -------------------------------------------------------------------------

# Fields a sweep may not vary: the sweep itself, and the trial count (trials repeat
# every point; a per-point trial count would make points incomparable).
_NOT_SWEEPABLE = {"sweep", "trials"}


@dataclass(frozen=True)
class _SweepPath:
    key: str  # as written in the file
    path: Path_  # normalized


def _sweep_issues(experiment: Experiment, base_dir: Path) -> list[_Issue] | None:
    """Problems with the sweep, or None when it is fine (then check every point)."""
    issues: list[_Issue] = []
    dumped = experiment.model_dump(by_alias=True)
    resolved: list[_SweepPath] = []
    for key, values in experiment.sweep.items():
        try:
            path = _resolve_path(key, dumped).path
        except _PathProblem as exc:
            issues.append(_Issue(("sweep", key), f"unknown field path {key!r}: {exc}"))
            continue
        if str(path[0]) in _NOT_SWEEPABLE:
            issues.append(_Issue(("sweep", key), f"{path[0]} cannot be swept"))
            continue
        overlap = next((r for r in resolved if _is_prefix(r.path, path) or _is_prefix(path, r.path)), None)
        if overlap is not None:
            issues.append(
                _Issue(("sweep", key), f"overlaps with the sweep path {overlap.key!r}; sweep each field once")
            )
            continue
        if not values:
            issues.append(_Issue(("sweep", key), "expected at least one value, got an empty list"))
            continue
        resolved.append(_SweepPath(key, path))
        for number, value in enumerate(values):
            try:
                experiment.with_overrides({key: value, "sweep": {}})
            except ValidationError as exc:
                data = {**copy.deepcopy(dumped), "sweep": {}}
                _set(data, path, value)
                for issue in _issues_from_validation(exc, data):
                    within = _is_prefix(path, issue.path)
                    field = display_path(issue.path)
                    text = issue.message if within and issue.path == path else f"{field}: {issue.message}"
                    issues.append(
                        _Issue(("sweep", key, number), f"{_show(value)} is not valid for {key}: {text}")
                    )
    count = sweep_point_count(experiment)
    if not issues and count > MAX_SWEEP_POINTS:
        issues.append(
            _Issue(("sweep",), f"the sweep expands to {count} points; expected at most {MAX_SWEEP_POINTS}")
        )
    return issues or None


def _unsweep(data: dict[str, Any], overridden: Path_, text: str) -> list[str]:
    """Drop the sweep entries an override of `overridden` decides; notes saying so.

    A field set on the command line wins over the file's sweep of it (or of a field
    inside it, or of the mapping holding it): the person asked for that one value.
    """
    sweep = data.get("sweep")
    if not overridden or overridden[0] == "sweep" or not isinstance(sweep, dict):
        return []
    notes = []
    for key in list(sweep):
        try:
            swept = _resolve_path(str(key), data).path
        except _PathProblem:
            continue  # reported by the sweep checks
        if _is_prefix(swept, overridden) or _is_prefix(overridden, swept):
            values = sweep.pop(key)
            notes.append(f"--set {text} replaces the file's sweep of {key} over {json.dumps(values, default=str)}")
    return notes


def _set(data: Any, path: Path_, value: Any) -> None:
    node = data
    for part in path[:-1]:
        if isinstance(node, dict) and node.get(part) is None:
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def _point_issues(experiment: Experiment, base_dir: Path) -> list[_Issue]:
    """Cross-field checks at every sweep point; problems a sweep value causes point to it."""
    if not experiment.sweep:
        return _cross_field_issues(experiment, base_dir)
    dumped = experiment.model_dump(by_alias=True)
    paths = {key: _resolve_path(key, dumped).path for key in experiment.sweep}
    points = sweep_points(experiment)
    # Which value of each sweep list every point uses (in sweep_points' order), so a
    # problem points at that value's line even when the list repeats equal values.
    positions = list(itertools.product(*(range(len(values)) for values in experiment.sweep.values())))
    found: dict[_Issue, list[str]] = {}
    for params, position in zip(points, positions, strict=True):
        label = ", ".join(f"{key}={_show(value)}" for key, value in params.items())
        try:
            resolved = experiment.with_overrides({**params, "sweep": {}})
        except ValidationError as exc:
            data = {**copy.deepcopy(dumped), "sweep": {}}
            for key, value in params.items():
                _set(data, paths[key], value)
            point_issues = [
                _Issue(("sweep",), f"the combination {label} is invalid: {display_path(i.path)}: {i.message}")
                for i in _issues_from_validation(exc, data)
            ]
        else:
            point_issues = []
            for issue in _cross_field_issues(resolved, base_dir):
                swept = next((key for key, path in paths.items() if _is_prefix(path, issue.path)), None)
                if swept is not None:
                    number = position[list(experiment.sweep).index(swept)]
                    issue = _Issue(("sweep", swept, number), f"{display_path(issue.path)}: {issue.message}")
                point_issues.append(issue)
        for issue in point_issues:
            found.setdefault(issue, [])
            if label not in found[issue]:
                found[issue].append(label)
    issues = []
    for issue, labels in found.items():
        if len(labels) == len(points) or issue.path[:1] == ("sweep",):
            issues.append(issue)
        else:
            where = "; ".join(labels)
            issues.append(_Issue(issue.path, f"{issue.message} (at sweep point {where})", issue.at_parent))
    return issues


def _is_prefix(prefix: Path_, path: Path_) -> bool:
    return len(prefix) <= len(path) and path[: len(prefix)] == prefix


# --- putting it together ---------------------------------------------------------------


class _Locator:
    """Gives issues their file (or --set override) and line."""

    def __init__(self, file: str, lines: dict[Path_, _Lines], overrides: list[tuple[Path_, str]]) -> None:
        self.file = file
        self.lines = lines
        self.overrides = overrides

    def problem(self, issue: _Issue) -> SpecProblem:
        for path, text in reversed(self.overrides):
            # Changing a fault's action changes which options its mapping may hold.
            covered = path[:-1] if path[-1:] == ("action",) else path
            if _is_prefix(covered, issue.path) or (issue.path and _is_prefix(issue.path, path)):
                return SpecProblem(f"--set {text}", None, display_path(issue.path), issue.message)
        return SpecProblem(self.file, self._line(issue), display_path(issue.path), issue.message)

    def _line(self, issue: _Issue) -> int | None:
        path = issue.path
        if issue.at_parent and path:
            parent = path[:-1]
            while parent not in self.lines and parent:
                parent = parent[:-1]
            where = self.lines.get(parent)
            return where.value if where else None
        while path not in self.lines and path:
            path = path[:-1]
        where = self.lines.get(path)
        return where.key if where else None


def _sorted(problems: list[SpecProblem]) -> list[SpecProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file.startswith("--set"), p.line or 0, p.path))


def load_experiment(
    path: Path, overrides: Sequence[str] = (), on_note: Callable[[str], None] | None = None
) -> Experiment:
    """Read, override and validate an experiment file.

    `overrides` are `PATH=VALUE` strings (`--set`), applied in order before validation.
    An override of a field the file sweeps replaces that sweep dimension (`--set
    workload.replicas=1` runs one replica count, not three); each such replacement is
    told to `on_note`. Raises SpecError carrying every problem found (file, line, field
    path, message).
    """
    file = str(path)
    try:
        document = _parse_yaml(_read_text(Path(path)))
    except _Rejected as exc:
        raise SpecError([SpecProblem(file, exc.line, "", exc.message)]) from exc
    if document is not None and document.data is None and document.problems:
        # The whole document was unreadable (e.g. a python tag on the top level).
        raise SpecError([SpecProblem(file, line, "", message) for _, line, message in document.problems])
    if document is None or document.data is None:
        raise SpecError(
            [SpecProblem(file, 1, "", "the file is empty; expected a mapping with at least 'name:'")]
        )
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else f"a single value ({_show(document.data)})"
        raise SpecError(
            [
                SpecProblem(
                    file,
                    document.lines[()].key,
                    "",
                    f"expected a mapping at the top level (name:, workload:, faults: ...), got {kind}",
                )
            ]
        )
    data: dict[str, Any] = document.data
    problems: list[SpecProblem] = [
        SpecProblem(file, line, display_path(where), message) for where, line, message in document.problems
    ]
    read_problem_paths = [where for where, _, _ in document.problems]

    applied: list[tuple[Path_, str]] = []
    for text in overrides:
        try:
            applied.append((_apply_override(data, text), text))
        except SpecError as exc:
            problems += exc.problems
            continue
        for note in _unsweep(data, applied[-1][0], text):
            if on_note is not None:
                on_note(note)
    locator = _Locator(file, document.lines, applied)

    try:
        experiment = Experiment.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        for issue in _issues_from_validation(exc, data):
            # A value already reported while reading (a bad tag, a duplicate) is not
            # reported again as a wrong type.
            if not any(_is_prefix(where, issue.path) for where in read_problem_paths if where):
                problems.append(locator.problem(issue))
        raise SpecError(_sorted(problems)) from exc

    base_dir = Path(path).parent
    sweep_problems = _sweep_issues(experiment, base_dir)
    if sweep_problems is not None:
        problems += [locator.problem(issue) for issue in sweep_problems]
    else:
        problems += [locator.problem(issue) for issue in _point_issues(experiment, base_dir)]
    if problems:
        raise SpecError(_sorted(problems))
    return experiment


# --- JSON Schema -----------------------------------------------------------------------

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _strip_titles(node: Any) -> Any:
    """Drop pydantic's generated property titles ("Graceperiodseconds"): noise in editors."""
    if isinstance(node, dict):
        cleaned = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                cleaned[key] = {
                    name: _strip_titles({k: v for k, v in spec.items() if k != "title"})
                    if isinstance(spec, dict)
                    else spec
                    for name, spec in value.items()
                }
            else:
                cleaned[key] = _strip_titles(value)
        return cleaned
    if isinstance(node, list):
        return [_strip_titles(item) for item in node]
    return node


def experiment_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the experiment file format, camelCase keys.

    It checks shape and types (unknown keys, wrong types, unknown actions); the checks
    across fields (faults within the timeline, counts against replicas) need
    `chaoslab validate`.
    """
    schema = _strip_titles(Experiment.model_json_schema(by_alias=True, mode="validation"))
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "chaoslab experiment",
        **{k: v for k, v in schema.items() if k != "title"},
    }


__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_SWEEP_POINTS",
    "display_path",
    "experiment_json_schema",
    "load_experiment",
    "parse_override",
]
