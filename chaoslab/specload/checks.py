"""Checks that span fields of one validated experiment: faults against the timeline, replicas and nodes; files.

What pydantic cannot see field by field: a fault after the end of the measurement, more
targets than replicas (after a scale fault) or nodes, a locustfile that is missing or
defines no User, container-kill into an image without a shell. Run at every sweep point
(`sweep`); the rules of newer features come from `chaoslab.specrules` and
`chaoslab.specstateful` and are gathered here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from chaoslab import specrules
from chaoslab.plan import MAX_FAULT_FIRINGS, firing_count, firing_times, replicas_at
from chaoslab.spec import NODE_ACTIONS, POD_ACTIONS, Experiment
from chaoslab.specload.paths import Path_, _Issue
from chaoslab.specload.wording import _did_you_mean
from chaoslab.specstateful import stateful_problems
from chaoslab.units import format_duration


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
