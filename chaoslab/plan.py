"""The plan of a run: sweep points x trials, seeds, the fault schedule, time and warnings.

Why a module of its own: the dry run, the engine, the results journal and the spec
loader's cross-field checks must agree on trial ids, seeds, sweep parameters, when each
fault fires and how many pods or nodes it hits. Computing all of that once, purely from a
validated `Experiment` (no cluster, no clock), keeps them identical and testable.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chaoslab.spec import (
    NODE_ACTIONS,
    POD_ACTIONS,
    Experiment,
    FaultSpec,
    NodeCrashFault,
    NodeDrainFault,
    NodeHangFault,
    ScaleFault,
    WorkloadSpec,
)
from chaoslab.specstateful import stateful_plan_lines
from chaoslab.units import format_duration, format_percent

# A fault with `every` may fire at most this many times in one trial: beyond that the
# interval is almost certainly a typo (every: 1ms over 40s is 40000 injections).
MAX_FAULT_FIRINGS = 10_000

# Estimate, not a Kubernetes default: scheduling, process spawn, Service set-up and the
# first endpoint propagation on top of the pod's own start and readiness time.
DEPLOY_OVERHEAD_SECONDS = 2.0
# Estimate: starting and stopping the load generator, teardown and the final result
# writes of one trial.
TRIAL_OVERHEAD_SECONDS = 3.0
# Kubernetes DefaultTolerationSeconds (300 s): pods tolerate an unreachable/not-ready
# node this long before the taint manager evicts them.
DEFAULT_TOLERATION_SECONDS = 300

# Image of the built-in app: the only image the sim backend runs.
BUILT_IN_IMAGE = WorkloadSpec.model_fields["image"].default
# The built-in stateful app (chaoslab/cluster/sim/kv.py), also run by the sim.
KV_IMAGE = "chaoslab/kv"


@dataclass(frozen=True)
class ScheduledFault:
    """One firing of a fault: `at` seconds after measure_start.

    fault_id is `f<index>` for the first firing and `f<index>.<repeat>` for the repeat-th
    repeat (see docs/results.md, faults.csv).
    """

    fault_id: str
    index: int
    repeat: int
    at: float
    action: str
    fault: FaultSpec


@dataclass(frozen=True)
class TrialPlan:
    """One trial: a sweep point's resolved experiment run once with its own seed.

    id is `p<point, 2 digits>-t<trial>`, e.g. `p01-t1`; point and trial are 1-based.
    params maps each sweep path (as written in the file) to this point's value.
    experiment is the experiment with the point's params applied and `sweep` emptied.
    """

    id: str
    point: int
    trial: int
    seed: int
    params: dict[str, Any]
    experiment: Experiment


@dataclass(frozen=True)
class Plan:
    """Everything a run will do, in order. expected_seconds is a wall-time estimate."""

    experiment: Experiment
    trials: tuple[TrialPlan, ...]
    sweep_paths: tuple[str, ...]
    points: int
    expected_seconds: float
    warnings: tuple[str, ...]


# --- sweep and trials ----------------------------------------------------------------


def sweep_point_count(experiment: Experiment) -> int:
    """How many points the sweep expands to (1 without a sweep); computed, not expanded."""
    return math.prod(len(values) for values in experiment.sweep.values())


def sweep_points(experiment: Experiment) -> list[dict[str, Any]]:
    """The cartesian product of the sweep, first path outermost, values in file order.

    Without a sweep there is one point with no params.
    """
    paths = list(experiment.sweep)
    return [
        dict(zip(paths, values, strict=True))
        for values in itertools.product(*(experiment.sweep[path] for path in paths))
    ]


def resolve_point(experiment: Experiment, params: dict[str, Any]) -> Experiment:
    """The experiment with one sweep point's params applied and the sweep removed.

    Raises pydantic.ValidationError (a ValueError) when the point is invalid, and
    KeyError when a path does not exist; `chaoslab.specload` reports both to the user
    before a plan is ever built.
    """
    return experiment.with_overrides({**params, "sweep": {}})


def trial_seed(seed: int, point: int, trial: int) -> int:
    """A per-trial seed derived from the experiment seed, stable across Python runs.

    random.Random seeds from a string through SHA-512, unlike hash(), which is salted
    per process.
    """
    return random.Random(f"{seed}:{point}:{trial}").getrandbits(32)


def trial_id(point: int, trial: int) -> str:
    return f"p{point:02d}-t{trial}"


# --- faults --------------------------------------------------------------------------


def firing_count(fault: FaultSpec, duration: float) -> int:
    """How many times a fault fires within [0, duration): computed without expanding."""
    if fault.at >= duration:
        return 0
    if fault.every is None or fault.every <= 0:
        return 1
    # Firings at at + k*every for k >= 0 while below the duration.
    fitting = math.floor((duration - fault.at) / fault.every)
    if fault.at + fitting * fault.every >= duration:
        fitting -= 1
    fitting += 1
    return fitting if fault.repeat is None else min(fitting, fault.repeat)


def firing_times(fault: FaultSpec, duration: float) -> list[float]:
    """Seconds after measure_start at which a fault fires (at most MAX_FAULT_FIRINGS).

    Raises ValueError when the fault would fire more often than MAX_FAULT_FIRINGS.
    """
    count = firing_count(fault, duration)
    if count > MAX_FAULT_FIRINGS:
        raise ValueError(
            f"a fault every {format_duration(fault.every or 0)} fires {count} times; "
            f"at most {MAX_FAULT_FIRINGS}"
        )
    every = fault.every or 0.0
    return [fault.at + k * every for k in range(count)]


def fault_schedule(experiment: Experiment) -> list[ScheduledFault]:
    """Every firing of every fault within the measurement, sorted by time.

    A fault fires at `at`, then with `every` at at + k*every while below
    timeline.duration, at most `repeat` times in all when given. Firings at the same
    time keep the order of the file.
    """
    duration = experiment.timeline.duration
    scheduled = [
        ScheduledFault(
            fault_id=f"f{index}" if repeat == 0 else f"f{index}.{repeat}",
            index=index,
            repeat=repeat,
            at=at,
            action=fault.action,
            fault=fault,
        )
        for index, fault in enumerate(experiment.faults)
        for repeat, at in enumerate(firing_times(fault, duration))
    ]
    return sorted(scheduled, key=lambda s: (s.at, s.index, s.repeat))


def replicas_at(experiment: Experiment, at: float, index: int) -> int:
    """Desired replicas when fault `index` fires at `at`: after every earlier scale.

    A scale that fires at the same time counts when it comes earlier in the file.
    """
    replicas = experiment.workload.replicas
    duration = experiment.timeline.duration
    latest = (-1.0, -1)
    for scale_index, fault in enumerate(experiment.faults):
        if not isinstance(fault, ScaleFault):
            continue
        for time in firing_times(fault, duration):
            if (time, scale_index) < (at, index) and (time, scale_index) > latest:
                latest = (time, scale_index)
                replicas = fault.replicas
    return replicas


def percent_of(fraction: float, total: int) -> int:
    """How many of `total` objects a percentage hits: rounded up, at least 1, at most all.

    Kubernetes rounds percentages of maxUnavailable-style fields up for disruption; the
    product is rounded to 9 decimals first so 7% of 100 is 7, not 8.
    """
    if total <= 0:
        return 0
    return min(total, max(1, math.ceil(round(fraction * total, 9))))


def resolved_target_count(experiment: Experiment, fault: FaultSpec, at: float | None = None) -> int | None:
    """How many pods (pod faults) or nodes (node faults) a fault hits at its firing.

    `at` selects a firing (default: the fault's first); pods are counted after earlier
    scale faults. None when not knowable from the file: scale (hits the Deployment, not
    chosen objects) and percentages of nodes on the kubernetes backend.
    """
    if isinstance(fault, ScaleFault):
        return None
    target = fault.target
    if target.name is not None:
        return 1
    if fault.action in POD_ACTIONS:
        index = _fault_index(experiment, fault)
        total = replicas_at(experiment, fault.at if at is None else at, index)
    elif experiment.cluster.backend == "sim":
        total = experiment.cluster.sim.nodes
    else:
        total = None
    if target.count is not None:
        return target.count
    if target.percent is None or total is None:
        return None
    return percent_of(target.percent, total)


def _fault_index(experiment: Experiment, fault: FaultSpec) -> int:
    for index, candidate in enumerate(experiment.faults):
        if candidate is fault:
            return index
    for index, candidate in enumerate(experiment.faults):
        if candidate == fault:
            return index
    return len(experiment.faults)


# --- time ----------------------------------------------------------------------------


def ready_seconds(experiment: Experiment) -> float:
    """Estimated seconds from creating a pod to it being Ready (and in the Service).

    Container start (sim timings), the app's own start and readiness delay, then the
    first readiness probe that sees it ready: probes run at initialDelaySeconds and then
    every periodSeconds, successThreshold of them must pass.
    """
    workload = experiment.workload
    start = experiment.cluster.sim.timings.pod_start_delay
    app_ready = workload.app.startup_seconds + workload.app.readiness_delay_seconds
    probe = workload.readiness_probe
    if probe is None:
        # Without a probe the pod is Ready when its process starts.
        return start + workload.app.startup_seconds
    first = probe.initial_delay_seconds
    ticks = max(0, math.ceil((app_ready - first) / probe.period_seconds - 1e-9))
    seen_ready = first + ticks * probe.period_seconds
    return start + seen_ready + (probe.success_threshold - 1) * probe.period_seconds


def trial_seconds(experiment: Experiment) -> float:
    """Estimated wall time of one trial: deploy and ready, warmup, measure, cooldown."""
    timeline = experiment.timeline
    workload = experiment.workload
    # An OrderedReady StatefulSet starts its pods one after another.
    sequential = workload.stateful and workload.effective_pod_management_policy() == "OrderedReady"
    return (
        ready_seconds(experiment) * (max(1, workload.replicas) if sequential else 1)
        + DEPLOY_OVERHEAD_SECONDS
        + timeline.warmup
        + timeline.duration
        + timeline.cooldown
        + TRIAL_OVERHEAD_SECONDS
    )


# --- warnings ------------------------------------------------------------------------


def plan_warnings(experiment: Experiment) -> list[str]:
    """Things about one resolved experiment that will surprise whoever reads the results."""
    warnings: list[str] = []
    warnings += _timing_warnings(experiment)
    warnings += _workload_warnings(experiment)
    warnings += _fault_warnings(experiment)
    return warnings


# kube-controller-manager --node-monitor-grace-period "must be N times more than kubelet's
# nodeStatusUpdateFrequency, where N means number of retries allowed for kubelet to post
# node status" (cmd/kube-controller-manager/app/options/nodelifecyclecontroller.go). N = 4:
# the ratio of the upstream defaults until v1.31 (40 s / 10 s); v1.32+ ships 5 (50 s / 10 s).
GRACE_HEARTBEATS = 4


def _timing_warnings(experiment: Experiment) -> list[str]:
    if experiment.cluster.backend != "sim":
        return []
    timings = experiment.cluster.sim.timings
    grace, heartbeat = timings.node_monitor_grace_period, timings.node_heartbeat_period
    if grace >= GRACE_HEARTBEATS * heartbeat:
        return []
    field = "cluster.sim.timings.nodeMonitorGracePeriod"
    if grace < heartbeat:
        consequence = (
            "shorter than one heartbeat, so every node goes Unknown between two heartbeats and back "
            "to Ready at the next: nodes flap for the whole trial, their pods leave and rejoin the "
            "Service, and while all are Unknown at once nothing is evicted (full disruption)"
        )
    else:
        missed = int(grace // heartbeat)
        consequence = (
            f"a healthy node goes Unknown, and its pods leave the Service, as soon as it misses "
            f"{missed} heartbeat{'s' if missed != 1 else ''} in a row"
        )
    return [
        f"{field} ({format_duration(grace)}) is less than {GRACE_HEARTBEATS} x nodeHeartbeatPeriod "
        f"({format_duration(heartbeat)}): {consequence}. kube-controller-manager asks for a "
        f"multiple of the kubelet's status interval; set it to at least {format_duration(GRACE_HEARTBEATS * heartbeat)} "
        f"(default {format_duration(50.0)})"
    ]


def _workload_warnings(experiment: Experiment) -> list[str]:
    workload = experiment.workload
    warnings: list[str] = []
    ready = ready_seconds(experiment)
    if workload.readiness_probe is None and workload.manifests is None:
        warnings.append(
            "workload.readinessProbe is not set: a pod is Ready, and gets traffic, as soon "
            "as its process starts, before the app can answer; add a readinessProbe"
        )
    budget = experiment.measure.recovery_budget
    if budget is not None and experiment.faults and budget < ready:
        warnings.append(
            f"measure.recoveryBudget ({format_duration(budget)}) is shorter than a new pod "
            f"needs to become ready (about {format_duration(ready)}: start, app startup "
            "and readiness probe): any fault that replaces a pod misses it"
        )
    if experiment.cluster.backend == "sim":
        ignored = []
        if workload.image not in (BUILT_IN_IMAGE, KV_IMAGE):
            ignored.append(f"workload.image ({workload.image})")
        # workload.command and args are not in this list: the sim kubelet runs them as
        # the container's process on this machine (kubelet.container_argv).
        # With autoscaling, requests.cpu is what the sim's HPA divides measured CPU by.
        resources = "workload.resources (except requests.cpu for autoscaling)" if workload.autoscaling else "workload.resources"
        for name, value in (
            (resources, workload.resources),
            ("workload.manifests", workload.manifests),
        ):
            if value is not None:
                ignored.append(name)
        if ignored:
            warnings.append(
                "the sim backend runs the built-in app (or workload.command) on this machine "
                f"and ignores {', '.join(ignored)}; they apply on the kubernetes backend only"
            )
        warnings += _loopback_command_warning(experiment)
    return warnings


# How a command says it listens on loopback only.
_LOOPBACK_WORDS = ("127.0.0.1", "localhost")


def _loopback_command_warning(experiment: Experiment) -> list[str]:
    """A workload.command bound to loopback: on the sim's kernel Service path (the default
    where the machine allows it) a pod is reached at its own IP, as in a real pod, so it
    never answers its readiness probe or the Service."""
    workload = experiment.workload
    words = [*(workload.command or []), *(workload.args or [])] if workload.command else []
    if experiment.cluster.sim.proxy_mode == "userspace" or not any(w in part for part in words for w in _LOOPBACK_WORDS):
        return []
    return [
        "workload.command listens on loopback (127.0.0.1/localhost): a pod is reached at its own "
        "IP, on sim's kernel Service path as in a real pod, so it would never be Ready; bind "
        "$(HOST) (the pod's IP) or 0.0.0.0 with $(PORT)"
    ]


def _stages_text(experiment: Experiment) -> str:
    """`, then 2 users for 20s, 12 users for 1m10s` for load.stages; empty without."""
    stages = experiment.load.stages or []
    return "".join(f", then {s.users} users for {format_duration(s.duration)}" for s in stages)


def _autoscaling_text(experiment: Experiment) -> str:
    """The HPA in one line: its bounds, target and the timings that decide how fast it acts."""
    scaling = experiment.workload.autoscaling
    assert scaling is not None
    text = f"autoscaling: {scaling.min_replicas}-{scaling.max_replicas} replicas at {scaling.target_utilization}% CPU"
    if experiment.cluster.backend == "sim":
        timings = experiment.cluster.sim.timings
        text += (
            f"; CPU scraped every {format_duration(timings.metrics_resolution)}, "
            f"evaluated every {format_duration(timings.hpa_sync_period)}"
        )
    return text


def _fault_warnings(experiment: Experiment) -> list[str]:
    warnings: list[str] = []
    duration = experiment.timeline.duration
    ready = ready_seconds(experiment)
    schedule = fault_schedule(experiment)
    first_firings = {s.index: s for s in schedule if s.repeat == 0}
    nodes = experiment.cluster.sim.nodes if experiment.cluster.backend == "sim" else None
    for index, fault in enumerate(experiment.faults):
        label = f"f{index} {fault.action}"
        if fault.at >= duration:
            warnings.append(
                f"{label} at {format_duration(fault.at)} is at or after the end of the "
                f"measurement ({format_duration(duration)}): it never fires"
            )
            continue
        first = first_firings.get(index)
        if fault.action in POD_ACTIONS and first is not None:
            warnings += _pod_outage_warning(experiment, fault, label, ready)
        if isinstance(fault, ScaleFault) and fault.replicas == 0:
            warnings.append(f"{label} to 0 replicas is a full outage until the end of the trial")
        if isinstance(fault, ScaleFault):
            warnings += _scale_under_autoscaling_warning(experiment, fault, label)
        if fault.action in NODE_ACTIONS and fault.action != "node-restore" and nodes is not None:
            hit = resolved_target_count(experiment, fault)
            if nodes == 1:
                warnings.append(
                    f"{label}: the sim cluster has 1 node, so every pod is on it: "
                    "a full outage; set cluster.sim.nodes to 2 or more"
                )
            elif hit is not None and hit >= nodes:
                warnings.append(f"{label} hits all {nodes} nodes: a full outage")
        if isinstance(fault, (NodeCrashFault, NodeHangFault)):
            warnings += _node_heal_warning(experiment, fault, label)
        if isinstance(fault, (NodeCrashFault, NodeHangFault, NodeDrainFault)):
            restore = fault.restore_after
            if restore is not None and fault.at + restore >= duration:
                warnings.append(
                    f"{label}: restoreAfter {format_duration(restore)} comes after the end of "
                    f"the measurement ({format_duration(duration)}); it is undone at teardown"
                )
        if fault.action == "node-restore" and not _earlier_node_fault(experiment, index):
            warnings.append(
                f"{label}: no node-crash, node-hang or node-drain fires before it, so it has "
                "nothing to restore"
            )
        if (
            experiment.cluster.backend == "kubernetes"
            and fault.action in {"node-crash", "node-hang", "node-restore"}
            and experiment.cluster.kubernetes.node_provider.type == "none"
        ):
            warnings.append(
                f"{label}: cluster.kubernetes.nodeProvider.type is none, so this fault "
                "cannot reach a node's machine; set nodeProvider (docker or command)"
            )
    return warnings


# kube-controller-manager --horizontal-pod-autoscaler-sync-period default: 15 s, how often a
# real cluster's HPA evaluates (the sim's is cluster.sim.timings.hpaSyncPeriod).
KUBERNETES_HPA_SYNC_PERIOD = 15.0


def _scale_under_autoscaling_warning(experiment: Experiment, fault: ScaleFault, label: str) -> list[str]:
    """A scale fault on an autoscaled workload: the HPA owns the replica count and fights back.

    Upstream reconcileAutoscaler (chaoslab.autoscaling.decide): a count outside
    [minReplicas, maxReplicas] is brought back at the next evaluation, any other is
    replaced by what the CPU asks for; a target at 0 replicas has autoscaling disabled.
    """
    scaling = experiment.workload.autoscaling
    if scaling is None:
        return []
    if fault.replicas == 0:
        return [
            f"{label} to 0 replicas also switches workload.autoscaling off: a HorizontalPodAutoscaler "
            "does not act on a target scaled to 0 (ScalingDisabled), so nothing scales it back up"
        ]
    if experiment.cluster.backend == "sim":
        sync = f"every {format_duration(experiment.cluster.sim.timings.hpa_sync_period)}, cluster.sim.timings.hpaSyncPeriod"
    else:
        sync = f"every {format_duration(KUBERNETES_HPA_SYNC_PERIOD)} by kube-controller-manager's default"
    bounds = f"minReplicas-maxReplicas {scaling.min_replicas}-{scaling.max_replicas}"
    if scaling.min_replicas <= fault.replicas <= scaling.max_replicas:
        what = f"replaces the fault's {fault.replicas} with what the CPU asks for"
    else:
        back = min(max(fault.replicas, scaling.min_replicas), scaling.max_replicas)
        what = f"sets {back} again ({fault.replicas} is outside {bounds})"
    return [
        f"{label} to {fault.replicas} replicas fights workload.autoscaling: the HorizontalPodAutoscaler "
        f"owns the replica count and at its next evaluation ({sync}) {what}; the trial "
        "measures the two fighting, not the scale. Drop the scale fault or workload.autoscaling"
    ]


def _pod_outage_warning(experiment: Experiment, fault: FaultSpec, label: str, ready: float) -> list[str]:
    index = _fault_index(experiment, fault)
    replicas = replicas_at(experiment, fault.at, index)
    hit = resolved_target_count(experiment, fault)
    if replicas < 1 or hit is None or hit < replicas:
        return []
    what = "pod" if replicas == 1 else "pods"
    return [
        f"{label} at {format_duration(fault.at)} hits {hit} of {replicas} {what}: a full "
        f"outage until a replacement is ready (about {format_duration(ready)})"
    ]


def _node_heal_warning(
    experiment: Experiment, fault: NodeCrashFault | NodeHangFault, label: str
) -> list[str]:
    duration = experiment.timeline.duration
    if fault.restore_after is not None and fault.at + fault.restore_after < duration:
        return []
    if any(other.action == "node-restore" and fault.at < other.at < duration for other in experiment.faults):
        return []
    grace = experiment.cluster.sim.timings.node_monitor_grace_period
    toleration = experiment.workload.toleration_seconds
    left = duration - fault.at
    if toleration is None:
        return [
            f"{label}: workload.tolerationSeconds is null, so pods on the lost node are "
            "never evicted and never replaced while it is down; set tolerationSeconds "
            "(e.g. 10) or restoreAfter"
        ]
    heal = grace + toleration
    if heal < left and toleration < DEFAULT_TOLERATION_SECONDS:
        return []
    if heal < left:
        # Measured in full, but still the thing to know before a live demo.
        return [
            f"{label} at {format_duration(fault.at)}: with the default tolerationSeconds "
            f"({format_duration(toleration)}) pods on the lost node are replaced only after "
            f"nodeMonitorGracePeriod ({format_duration(grace)}) + tolerationSeconds = about "
            f"{format_duration(heal)}; until then their share of requests fails"
        ]
    return [
        f"{label} at {format_duration(fault.at)}: pods on the lost node are evicted only "
        f"after nodeMonitorGracePeriod ({format_duration(grace)}) + tolerationSeconds "
        f"({format_duration(toleration)}) = about {format_duration(heal)}, later than the "
        f"{format_duration(left)} left in the measurement; until then their share of "
        "requests fails. Lower workload.tolerationSeconds (e.g. 10) or set restoreAfter"
    ]


def _earlier_node_fault(experiment: Experiment, index: int) -> bool:
    at = experiment.faults[index].at
    return any(
        isinstance(other, (NodeCrashFault, NodeHangFault, NodeDrainFault))
        and (other.at, position) < (at, index)
        for position, other in enumerate(experiment.faults)
    )


# --- the plan ------------------------------------------------------------------------


def build_plan(experiment: Experiment) -> Plan:
    """The full plan of an experiment accepted by `chaoslab.specload.load_experiment`.

    Points are the sweep's cartesian product (first path outermost), each run
    `experiment.trials` times; warnings common to every point are listed once, others
    name the points they apply to.
    """
    points = sweep_points(experiment)
    trials: list[TrialPlan] = []
    warnings_by_point: list[list[str]] = []
    expected = 0.0
    for point_number, params in enumerate(points, start=1):
        resolved = resolve_point(experiment, params)
        warnings_by_point.append(plan_warnings(resolved))
        for trial_number in range(1, experiment.trials + 1):
            trials.append(
                TrialPlan(
                    id=trial_id(point_number, trial_number),
                    point=point_number,
                    trial=trial_number,
                    seed=trial_seed(experiment.seed, point_number, trial_number),
                    params=dict(params),
                    experiment=resolved,
                )
            )
            expected += trial_seconds(resolved)
    return Plan(
        experiment=experiment,
        trials=tuple(trials),
        sweep_paths=tuple(experiment.sweep),
        points=len(points),
        expected_seconds=expected,
        warnings=tuple(_merge_point_warnings(points, warnings_by_point)),
    )


def _merge_point_warnings(points: list[dict[str, Any]], warnings_by_point: list[list[str]]) -> list[str]:
    """Each distinct warning once, prefixed with the points it applies to (if not all)."""
    where: dict[str, list[int]] = {}
    for number, warnings in enumerate(warnings_by_point, start=1):
        for warning in warnings:
            where.setdefault(warning, [])
            if number not in where[warning]:
                where[warning].append(number)
    merged = []
    for warning, numbers in where.items():
        if len(numbers) == len(points):
            merged.append(warning)
        else:
            merged.append(f"{_points_label(points, numbers)}: {warning}")
    return merged


# Point ids listed one by one in a warning before the rest are counted.
_LISTED_POINTS = 4


def _points_label(points: list[dict[str, Any]], numbers: list[int]) -> str:
    """`at workload.replicas=1` when the points are exactly those sharing some values,
    else their ids (`p01, p03`)."""
    group = [points[n - 1] for n in numbers]
    shared = {path: value for path, value in group[0].items() if all(point[path] == value for point in group)}
    if shared:
        matching = [
            n
            for n, point in enumerate(points, start=1)
            if all(point[path] == value for path, value in shared.items())
        ]
        if matching == numbers:
            return f"at {_params_text(shared)}"
    ids = [f"p{n:02d}" for n in numbers]
    if len(ids) > _LISTED_POINTS:
        return f"at {', '.join(ids[:_LISTED_POINTS])} and {len(ids) - _LISTED_POINTS} more points"
    return f"at {', '.join(ids)}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{path}={_value_text(value)}" for path, value in params.items()) or "-"


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_plan(plan: Plan) -> str:
    """The human dry-run text of a plan (plain text; print it without markup)."""
    experiment = plan.experiment
    lines: list[str] = []
    lines.append(f"experiment {experiment.name}")
    if experiment.description:
        lines.append(f"  {experiment.description}")
    cluster = experiment.cluster
    backend = (
        f"sim, {cluster.sim.nodes} node{'s' if cluster.sim.nodes != 1 else ''}"
        if cluster.backend == "sim"
        else f"kubernetes, context {cluster.kubernetes.context or '(current)'}"
    )
    lines.append(f"backend: {backend}")
    if plan.sweep_paths:
        for path in plan.sweep_paths:
            values = ", ".join(_value_text(v) for v in experiment.sweep[path])
            lines.append(f"sweep: {path} = {values}")
    total = len(plan.trials)
    lines.append(
        f"plan: {plan.points} point{'s' if plan.points != 1 else ''} x "
        f"{experiment.trials} trial{'s' if experiment.trials != 1 else ''} = "
        f"{total} trial{'s' if total != 1 else ''}"
    )
    for point_number in range(1, plan.points + 1):
        point_trials = [t for t in plan.trials if t.point == point_number]
        resolved = point_trials[0].experiment
        lines.append("")
        params = point_trials[0].params
        lines.append(
            f"point p{point_number:02d}: {_params_text(params)}"
            if params
            else f"point p{point_number:02d} (no sweep)"
        )
        timeline = resolved.timeline
        lines.append(
            f"  timeline: ready ~{format_duration(ready_seconds(resolved))}, warmup "
            f"{format_duration(timeline.warmup)}, measure {format_duration(timeline.duration)}, "
            f"cooldown {format_duration(timeline.cooldown)}; about "
            f"{format_duration(trial_seconds(resolved))} per trial"
        )
        lines.append(
            f"  workload: {resolved.workload.replicas} replica"
            f"{'s' if resolved.workload.replicas != 1 else ''}; load: "
            f"{resolved.load.users} users" + _stages_text(resolved)
        )
        if resolved.workload.autoscaling is not None:
            lines.append("  " + _autoscaling_text(resolved))
        lines += [f"  {line}" for line in stateful_plan_lines(resolved)]
        lines.append("  trials: " + ", ".join(f"{t.id} (seed {t.seed})" for t in point_trials))
        lines += _render_schedule(resolved)
    lines.append("")
    lines.append(
        f"expected wall time: about {format_duration(plan.expected_seconds)} "
        f"({total} trial{'s' if total != 1 else ''})"
    )
    if plan.warnings:
        lines.append("warnings:")
        lines += [f"  ! {warning}" for warning in plan.warnings]
    else:
        lines.append("warnings: none")
    return "\n".join(lines) + "\n"


# A fault with more firings than this is shown as its first few and last one.
_SHOWN_FIRINGS = 6


def _render_schedule(experiment: Experiment) -> list[str]:
    schedule = fault_schedule(experiment)
    if not schedule:
        return ["  faults: none (a baseline)"]
    lines = ["  faults (seconds after the measurement starts):"]
    shown: Iterable[ScheduledFault] = schedule
    if len(schedule) > _SHOWN_FIRINGS:
        shown = [*schedule[: _SHOWN_FIRINGS - 1], schedule[-1]]
    for position, scheduled in enumerate(shown):
        if position == _SHOWN_FIRINGS - 1 and len(schedule) > _SHOWN_FIRINGS:
            lines.append(f"    ... {len(schedule) - _SHOWN_FIRINGS} more")
        lines.append(
            f"    {scheduled.fault_id:<7} {format_duration(scheduled.at):>7}  "
            f"{scheduled.action:<15} {_target_text(experiment, scheduled)}"
        )
    return lines


def _target_text(experiment: Experiment, scheduled: ScheduledFault) -> str:
    fault = scheduled.fault
    if isinstance(fault, ScaleFault):
        before = replicas_at(experiment, scheduled.at, scheduled.index)
        return f"replicas {before} -> {fault.replicas}"
    count = resolved_target_count(experiment, fault, scheduled.at)
    target = fault.target
    kind = "pod" if fault.action in POD_ACTIONS else "node"
    if target.name is not None:
        text = f"{kind} {target.name}"
    elif target.percent is not None:
        share = format_percent(target.percent)
        text = f"{share} of {kind}s" + (f" = {count}" if count is not None else "")
    else:
        text = f"{count} {kind}{'s' if count != 1 else ''}"
    if fault.action in POD_ACTIONS:
        replicas = replicas_at(experiment, scheduled.at, scheduled.index)
        text += f" of {replicas}"
    elif experiment.cluster.backend == "sim":
        text += f" of {experiment.cluster.sim.nodes}"
    options = _fault_options(fault)
    return text + (f"  ({options})" if options else "")


def _fault_options(fault: FaultSpec) -> str:
    """The per-action options the user set, in the file's spelling (camelCase)."""
    base = {"at", "every", "repeat", "target", "action"}
    data = fault.model_dump(by_alias=True, exclude_defaults=True)
    parts = []
    for key, value in data.items():
        if key in base:
            continue
        parts.append(
            f"{key}={format_duration(value)}"
            if key in {"restoreAfter", "timeout"}
            else f"{key}={_value_text(value)}"
        )
    if fault.every is not None:
        parts.insert(0, f"every {format_duration(fault.every)}")
    return ", ".join(parts)
