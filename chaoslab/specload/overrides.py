"""`--set PATH=VALUE`: parsing an override, applying it to the raw data, unsweeping what it decides.

Overrides are applied to the file's data before validation, so a value set on the
command line is validated (and its problems reported, as `--set ...`) like the file's own.
"""

from __future__ import annotations

import json
from typing import Any

from chaoslab.errors import SpecError, SpecProblem
from chaoslab.specload.limits import MAX_FILE_BYTES
from chaoslab.specload.paths import Path_, _is_prefix, _PathProblem, _resolve_path, display_path
from chaoslab.specload.wording import _show
from chaoslab.specload.yamlfile import _parse_yaml, _Rejected


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
