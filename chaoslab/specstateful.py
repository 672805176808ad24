"""Checks across fields for stateful workloads: kinds, volumes, ordinals, lost-write budgets.

Why a module apart from specload: these rules belong to one concept (a StatefulSet and
what may be asked of it) and grew with issue 13; specload stays the place that reads YAML
and locates problems, and calls `stateful_problems` at every sweep point like its other
cross-field checks, so a problem a swept value causes points at that value's line.

Each problem is `(data path, message)`; specload gives it its file and line.
"""

from __future__ import annotations

import re

from chaoslab.spec import POD_ACTIONS, VOLUME_CLAIM, VOLUME_EMPTY_DIR, Experiment

Problem = tuple[tuple[str | int, ...], str]

# Images that keep no data: the data-integrity users would have nothing to read back.
_STATELESS_IMAGES = frozenset({"chaoslab/echo"})


def stateful_problems(experiment: Experiment) -> list[Problem]:
    """Bad combinations of workload.kind, workload.volume, load.dataIntegrity and
    measure.maxLostWrites, and pod-fault targets a kind cannot have."""
    workload = experiment.workload
    problems: list[Problem] = []
    volume = workload.volume
    if workload.manifests is not None and (workload.stateful or volume is not None):
        field = "kind" if workload.stateful else "volume"
        problems.append(
            (
                ("workload", field),
                "workload.manifests replaces the generated objects, so a StatefulSet or volume "
                "must be in those manifests; remove workload." + field,
            )
        )
    if not workload.stateful:
        if volume is not None and volume.type == VOLUME_CLAIM:
            problems.append(
                (
                    ("workload", "volume", "type"),
                    "a volumeClaimTemplate needs workload.kind: StatefulSet (a Deployment has no "
                    "per-pod claims: its replicas are interchangeable); use kind: StatefulSet, or "
                    f"type: {VOLUME_EMPTY_DIR} for scratch space",
                )
            )
        if workload.pod_management_policy is not None:
            problems.append(
                (
                    ("workload", "podManagementPolicy"),
                    "only a StatefulSet has a podManagementPolicy; set workload.kind: StatefulSet or remove it",
                )
            )
    if volume is not None and volume.type == VOLUME_EMPTY_DIR and volume.storage_class_name is not None:
        problems.append(
            (
                ("workload", "volume", "storageClassName"),
                f"an emptyDir has no storage class; remove it, or use type: {VOLUME_CLAIM}",
            )
        )
    problems += _data_integrity_problems(experiment)
    problems += _pod_name_problems(experiment)
    return problems


def _data_integrity_problems(experiment: Experiment) -> list[Problem]:
    workload = experiment.workload
    data = experiment.load.data_integrity
    problems: list[Problem] = []
    if data is None:
        if experiment.measure.max_lost_writes is not None:
            problems.append(
                (
                    ("measure", "maxLostWrites"),
                    "needs load.dataIntegrity (the users whose acknowledged writes it counts), "
                    "e.g. load: {dataIntegrity: {ordinal: 0}}",
                )
            )
        return problems
    if not workload.stateful:
        problems.append(
            (
                ("load", "dataIntegrity"),
                "writes to one StatefulSet ordinal through its stable address; a Deployment's pods "
                "have none; set workload.kind: StatefulSet",
            )
        )
    elif data.ordinal >= workload.replicas:
        last = workload.replicas - 1
        have = f"ordinals 0..{last}" if last >= 0 else "no ordinals"
        problems.append(
            (
                ("load", "dataIntegrity", "ordinal"),
                f"ordinal {data.ordinal} does not exist: workload.replicas is {workload.replicas} ({have})",
            )
        )
    if workload.command is None and workload.image in _STATELESS_IMAGES:
        problems.append(
            (
                ("workload", "image"),
                f"{workload.image} keeps no data, so load.dataIntegrity has nothing to read back; "
                "use image: chaoslab/kv (the built-in key-value store)",
            )
        )
    return problems


def _pod_name_problems(experiment: Experiment) -> list[Problem]:
    """A pod fault's target.name must be a pod the workload's kind can have."""
    workload = experiment.workload
    ordinal_name = re.compile(rf"^{re.escape(workload.name)}-(0|[1-9][0-9]*)$")
    problems: list[Problem] = []
    for index, fault in enumerate(experiment.faults):
        name = fault.target.name
        if fault.action not in POD_ACTIONS or name is None:
            continue
        where = ("faults", index, "target", "name")
        if workload.stateful:
            names = workload.ordinal_names()
            if name not in names:
                shown = ", ".join(names) if len(names) <= 4 else f"{names[0]} .. {names[-1]}"
                problems.append((where, f"unknown pod {name!r}; the StatefulSet's pods are {shown or 'none'}"))
        elif ordinal_name.match(name):
            problems.append(
                (
                    where,
                    f"{name!r} is a StatefulSet pod name; a Deployment's pods have generated names "
                    f"({workload.name}-<hash>-<suffix>), so this fault would find no pod; use "
                    "target.count, or workload.kind: StatefulSet",
                )
            )
    return problems


def claim_names(experiment: Experiment) -> list[str]:
    """The PersistentVolumeClaims a StatefulSet with a volumeClaimTemplate gets, one per
    ordinal: `<volume name>-<workload name>-<ordinal>` (upstream's naming)."""
    workload = experiment.workload
    volume = workload.volume
    if not workload.stateful or volume is None or volume.type != VOLUME_CLAIM:
        return []
    return [f"{volume.name}-{pod}" for pod in workload.ordinal_names()]


def stateful_plan_lines(experiment: Experiment) -> list[str]:
    """What the dry run says about a StatefulSet: its policy, its volume and claims, and
    which ordinal the data-integrity users write to."""
    workload = experiment.workload
    lines: list[str] = []
    if workload.stateful:
        lines.append(
            f"StatefulSet {workload.name} ({workload.effective_pod_management_policy()}): pods "
            + ", ".join(workload.ordinal_names())
        )
    volume = workload.volume
    if volume is not None and volume.type == VOLUME_CLAIM:
        claims = claim_names(experiment)
        storage = volume.storage_class_name or "the default StorageClass"
        lines.append(
            f"volume {volume.name} at {volume.mount_path}: claims {', '.join(claims)} ({volume.size} each, "
            f"{storage}); kept across pod deletions, deleted at teardown"
        )
    elif volume is not None:
        lines.append(f"volume {volume.name} at {volume.mount_path}: emptyDir (emptied when its pod goes)")
    data = experiment.load.data_integrity
    if data is not None:
        lines.append(
            f"data-integrity users write unique keys to {workload.name}-{data.ordinal} through its "
            f"per-ordinal Service (writes:reads {data.write_weight}:{data.read_weight})"
        )
    return lines
