"""Cross-field rules of load stages and autoscaling, as (field path, message) pairs.

Why a module apart from specload: specload is the machinery that locates problems
(YAML lines, pydantic translation); the rules a newer feature adds are plain functions
over a validated `Experiment` here, and specload gives each pair its file and line. Compiled, never imported: a user's locustfile is read with
`ast` only (importing it would run its code and gevent's patching in this process).
"""

from __future__ import annotations

import ast
from pathlib import Path

from chaoslab.spec import Experiment
from chaoslab.units import format_duration, parse_cpu

Rule = tuple[tuple[str | int, ...], str]
"""A problem: the dotted path (keys and list indices) and what is wrong there."""


def stage_issues(experiment: Experiment, base_dir: Path) -> list[Rule]:
    """Stages that run past the measurement; stages beside a locustfile's own shape."""
    stages = experiment.load.stages
    if stages is None:
        return []
    issues: list[Rule] = []
    duration = experiment.timeline.duration
    end = 0.0
    for index, stage in enumerate(stages):
        end += stage.duration
        if end > duration + 1e-9:
            issues.append(
                (
                    ("load", "stages", index, "duration"),
                    f"stage {index + 1} ends at {format_duration(end)}, after the measurement ends "
                    f"(timeline.duration: {format_duration(duration)}); expected the stages to fit in it "
                    "(shorten the stages or lengthen timeline.duration)",
                )
            )
            break
    locustfile = experiment.load.locustfile
    if locustfile is not None and (base_dir / locustfile).is_file():
        shape = load_shape_class(base_dir / locustfile)
        if shape is not None:
            issues.append(
                (
                    ("load", "stages"),
                    f"{locustfile} defines its own LoadTestShape ({shape}), which decides the users "
                    "over time; remove load.stages or that class",
                )
            )
    return issues


def load_shape_class(locustfile: Path) -> str | None:
    """The name of a class the locustfile derives from LoadTestShape, if any."""
    try:
        tree = ast.parse(locustfile.read_bytes(), filename=str(locustfile))
    except (SyntaxError, OSError, ValueError):
        return None  # reported by the locustfile checks
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
                if name == "LoadTestShape":
                    return node.name
    return None


def autoscaling_issues(experiment: Experiment) -> list[Rule]:
    """A CPU request that is missing (autoscaling needs it) or unreadable."""
    workload = experiment.workload
    requests = workload.resources.requests if workload.resources is not None else None
    cpu = requests.cpu if requests is not None else None
    if cpu is not None:
        try:
            parse_cpu(cpu)
        except ValueError as exc:
            return [(("workload", "resources", "requests", "cpu"), str(exc))]
    if workload.autoscaling is None:
        return []
    if cpu is None:
        return [
            (
                ("workload", "autoscaling"),
                "needs workload.resources.requests.cpu: CPU utilisation is measured as a share of "
                "each pod's CPU request (e.g. resources: {requests: {cpu: 100m}})",
            )
        ]
    scaling = workload.autoscaling
    if workload.replicas == 0:
        return [
            (
                ("workload", "replicas"),
                "0 turns a HorizontalPodAutoscaler off (it never scales a workload at 0 replicas); "
                f"expected a count from {scaling.min_replicas} to {scaling.max_replicas}",
            )
        ]
    return []
