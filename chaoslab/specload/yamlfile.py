"""Reading an experiment file: YAML text to plain data with the line of every key.

Parses YAML itself (PyYAML's composer, safe tags only) so that every value keeps its line
for the messages, and with limits (`limits`) so that a hostile file (an alias bomb,
deep nesting, a binary or huge file) is refused quickly with a located message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaoslab.specload.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from chaoslab.specload.paths import Path_
from chaoslab.specload.wording import _show

# YAML tags a file may use: plain data only. Timestamps are kept as their text (no field
# is a date, and `2001-02-30` would otherwise crash the date constructor).
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null")}
_TIMESTAMP_TAG = f"{_TAG}timestamp"
_MERGE_TAG = f"{_TAG}merge"
_MAP_TAG = f"{_TAG}map"
_SEQ_TAG = f"{_TAG}seq"


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
