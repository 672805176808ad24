"""Checking the sweep: its paths and values, and the cross-field checks at every sweep point.

A problem that only one sweep value causes points at that value's line, and a problem
found at some points names them; so the checks run per point here rather than once.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from chaoslab.plan import sweep_point_count, sweep_points
from chaoslab.spec import Experiment
from chaoslab.specload.checks import _cross_field_issues
from chaoslab.specload.limits import MAX_SWEEP_POINTS
from chaoslab.specload.paths import Path_, _is_prefix, _Issue, _PathProblem, _resolve_path, _set, display_path
from chaoslab.specload.validation import _issues_from_validation
from chaoslab.specload.wording import _show

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
