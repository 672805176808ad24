"""Reading an experiment file: YAML text to a validated `Experiment`, every problem located.

Why a package apart from the model: a person fixing a file needs *all* of its problems at
once, each with `file:line`, the field path in the file's own spelling, what was found
and what was expected. Pydantic knows what is wrong but not where, and its raw messages
leak internals (union tags, validator names). So this package parses YAML itself (safe
tags only, with limits against hostile input), remembers the line of every key,
translates pydantic's errors into `SpecProblem`s, and adds the checks that span several
fields (faults within the timeline, target counts against replicas and nodes, sweep
values). `load_experiment`, here, puts them together; the modules, one concept each:

- `limits`: the bounds against hostile input.
- `yamlfile`: the file's text and its YAML as data with the line of every key.
- `paths`: data paths, how they are shown, dotted paths resolved against the model.
- `wording`: how a message quotes a value and suggests a spelling.
- `overrides`: `--set PATH=VALUE`.
- `validation`: pydantic's errors in the user's words.
- `checks`: the checks across fields of one experiment.
- `sweep`: the sweep's own checks, and the cross-field checks at every sweep point.
- `schema`: the JSON Schema.

Public API: `load_experiment`, `parse_override`, `experiment_json_schema` (and the limits
and `display_path`), importable from `chaoslab.specload` as before the split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chaoslab.errors import SpecError, SpecProblem
from chaoslab.spec import Experiment
from chaoslab.specload.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, MAX_SWEEP_POINTS
from chaoslab.specload.overrides import _apply_override, _unsweep, parse_override
from chaoslab.specload.paths import Path_, _is_prefix, _Issue, display_path
from chaoslab.specload.schema import SCHEMA_DIALECT, experiment_json_schema  # noqa: F401 - SCHEMA_DIALECT re-exported
from chaoslab.specload.sweep import _point_issues, _sweep_issues
from chaoslab.specload.validation import _issues_from_validation
from chaoslab.specload.wording import _show
from chaoslab.specload.yamlfile import _Lines, _parse_yaml, _read_text, _Rejected


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
