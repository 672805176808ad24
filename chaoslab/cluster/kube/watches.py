"""Watches on pods, EndpointSlices, nodes, Events and HPAs, turned into our vocabulary.

Why it exists: the analysis needs the same `events.csv` (and `autoscaler.csv`) rows from
a real cluster as from sim (see docs/results.md). Each tracker keeps the last state it saw
of every object and emits a `ClusterEvent` (the autoscaler tracker: an `AutoscalerSample`)
for each change between that state and the next one. The same
difference drives both a watch event and a relist, which is what makes a watch that
expired (HTTP 410 Gone) resumable without losing events: relist, compare with the known
state, emit what changed in the gap, watch again from the list's resourceVersion.

Timestamps: the API's own (condition transitions, container start and finish, deletion,
taint timeAdded, event times) where they exist, else the moment the change was seen.
API times have whole-second resolution, so `event_time` keeps the observation time when
it falls within that second (it is the more precise of the two) and the API time when the
change was seen later (after a relist).
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from chaoslab.cluster.base import AutoscalerSample, ClusterEvent, EventKind
from chaoslab.cluster.kube.records import (
    AutoscalerRecord,
    ContainerStatus,
    EndpointSliceRecord,
    EventRecord,
    KubeApi,
    NodeRecord,
    PodRecord,
    WatchExpired,
    WatchKind,
    WatchStream,
)
from chaoslab.errors import ClusterError

# API timestamps (metav1.Time) are truncated to whole seconds.
API_TIME_RESOLUTION_SECONDS = 1.0
# The taint kubectl cordon adds beside spec.unschedulable; reported as node_cordoned.
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
# Pod condition the API server sets (PodDisruptionConditions, GA in 1.31) when a pod is
# about to be disrupted: reason EvictionByEvictionAPI, DeletionByTaintManager, ...
DISRUPTION_CONDITION = "DisruptionTarget"
# Event reasons that mean a pod was evicted: the taint manager (NoExecute taint past
# tolerationSeconds) and the kubelet (node pressure).
EVICTION_EVENT_REASONS = frozenset({"TaintManagerEviction", "Evicted"})
# The taint eviction controller uses its one reason for both of its messages: "Marking
# for deletion Pod ns/name" and, when the taint went before tolerationSeconds ran out,
# "Cancelling deletion of Pod ns/name" (pkg/controller/tainteviction, v1.36).
EVICTION_CANCELLED_PREFIX = "Cancelling deletion"
# "back-off 20s restarting failed container=app pod=..." (kubelet CrashLoopBackOff message).
_BACK_OFF = re.compile(r"back-off (?:(\d+)m)?(\d+)s")


def event_time(api_ts: float | None, observed: float) -> float:
    """The best estimate of when a change happened, from its API time and when we saw it."""
    if api_ts is None:
        return observed
    return max(api_ts, min(observed, api_ts + API_TIME_RESOLUTION_SECONDS))


class EventSink:
    """Thread-safe queue of events from the watcher threads to `Cluster.events()`."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[ClusterEvent] = queue.SimpleQueue()

    def put(self, event: ClusterEvent) -> None:
        self._queue.put(event)

    def put_all(self, events: Iterable[ClusterEvent]) -> None:
        for event in events:
            self._queue.put(event)

    def drain(self) -> list[ClusterEvent]:
        events: list[ClusterEvent] = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events


@dataclass
class Causes:
    """What chaoslab itself did to which object, so events can name the reason.

    Shared by the fault code (writer) and the trackers (readers) under one lock; also
    the pods already reported evicted, so the pod condition and the Event that both tell
    of one eviction make one row.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    pods: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    evicted: set[str] = field(default_factory=set)

    def pod(self, name: str) -> str:
        with self.lock:
            return self.pods.get(name, "")

    def node(self, name: str) -> str:
        with self.lock:
            return self.nodes.get(name, "")

    def mark_pod(self, name: str, cause: str) -> None:
        with self.lock:
            self.pods[name] = cause

    def mark_node(self, name: str, cause: str) -> None:
        with self.lock:
            self.nodes[name] = cause

    def first_eviction(self, pod: str) -> bool:
        with self.lock:
            if pod in self.evicted:
                return False
            self.evicted.add(pod)
            return True


class Tracker:
    """Known state of one kind of object; emits events for every change it is shown."""

    def __init__(self) -> None:
        self.known: dict[str, object] = {}

    def key(self, record: object) -> str:
        return str(getattr(record, "name", ""))

    def changes(self, old: object | None, new: object | None, observed: float) -> list[ClusterEvent]:
        raise NotImplementedError

    def apply(self, type_: str, record: object, observed: float) -> list[ClusterEvent]:
        """One watch event (ADDED, MODIFIED, DELETED)."""
        key = self.key(record)
        old = self.known.get(key)
        if type_ == "DELETED":
            self.known.pop(key, None)
            return self.changes(old, record, observed) + self.changes(record, None, observed)
        self.known[key] = record
        return self.changes(old, record, observed)

    def sync(self, items: Iterable[object], observed: float, *, baseline: bool) -> list[ClusterEvent]:
        """A full list: the differences to the known state (nothing on the baseline list)."""
        fresh = {self.key(item): item for item in items}
        events: list[ClusterEvent] = []
        if not baseline:
            for key, item in fresh.items():
                events += self.changes(self.known.get(key), item, observed)
            for key, old in self.known.items():
                if key not in fresh:
                    events += self.changes(old, None, observed)
        self.known = dict(fresh)
        return events


def _back_off_seconds(message: str) -> int | None:
    match = _BACK_OFF.search(message)
    if not match:
        return None
    return int(match.group(1) or 0) * 60 + int(match.group(2))


def _exit_text(code: int | None, reason: str, signal: int | None = None) -> str:
    parts = []
    if code is not None:
        parts.append(f"exitCode={code}")
    if signal:
        parts.append(f"signal={signal}")
    if reason:
        parts.append(f"reason={reason}")
    return " ".join(parts)


class PodTracker(Tracker):
    """Pods of the workload: lifecycle, containers, readiness, terminations, evictions."""

    def __init__(self, causes: Causes) -> None:
        super().__init__()
        self._causes = causes

    def changes(self, old: object | None, new: object | None, observed: float) -> list[ClusterEvent]:
        assert old is None or isinstance(old, PodRecord)
        assert new is None or isinstance(new, PodRecord)
        if new is None:
            if old is None:
                return []
            return [self._event(EventKind.POD_DELETED, old, observed, self._causes.pod(old.name))]
        events: list[ClusterEvent] = []
        before = old or PodRecord(name=new.name, namespace=new.namespace)
        if old is None:
            events.append(
                self._event(EventKind.POD_CREATED, new, event_time(new.created, observed), new.owner_kind)
            )
        events += self._scheduling(before, new, observed)
        for status in new.containers:
            previous = next((c for c in before.containers if c.name == status.name), ContainerStatus(status.name))
            events += self._container(new, previous, status, observed)
        events += self._readiness(before, new, observed)
        events += self._termination(before, new, observed)
        return events

    def _event(self, kind: EventKind, pod: PodRecord, ts: float, reason: str = "", detail: str = "") -> ClusterEvent:
        return ClusterEvent(ts=ts, kind=kind, object="pod", name=pod.name, node=pod.node or "", reason=reason, detail=detail)

    def _scheduling(self, old: PodRecord, new: PodRecord, observed: float) -> list[ClusterEvent]:
        condition = new.condition("PodScheduled")
        if new.node and not old.node:
            ts = condition.last_transition if condition and condition.status == "True" else None
            return [self._event(EventKind.POD_SCHEDULED, new, event_time(ts, observed), "default-scheduler")]
        was = old.condition("PodScheduled")
        if (
            not new.node
            and condition is not None
            and condition.status == "False"
            and (was is None or was.status != "False" or was.message != condition.message)
        ):
            return [
                self._event(
                    EventKind.POD_PENDING,
                    new,
                    event_time(condition.last_transition, observed),
                    condition.reason,
                    condition.message,
                )
            ]
        return []

    def _container(
        self, pod: PodRecord, old: ContainerStatus, new: ContainerStatus, observed: float
    ) -> list[ClusterEvent]:
        events: list[ClusterEvent] = []
        restarts = f"restartCount={new.restart_count}"
        if new.restart_count > old.restart_count:
            # The previous run ended; when the terminated state itself was never seen
            # (it lasted less than a watch round trip), lastState tells how it ended.
            if old.state != "terminated":
                text = _exit_text(new.last_exit_code, new.last_reason)
                events.append(
                    self._event(
                        EventKind.CONTAINER_DIED,
                        pod,
                        event_time(new.last_finished_at, observed),
                        new.last_reason,
                        f"container={new.name} {text}".strip(),
                    )
                )
            events.append(
                self._event(
                    EventKind.CONTAINER_RESTARTED,
                    pod,
                    event_time(new.started_at if new.state == "running" else None, observed),
                    "kubelet",
                    f"container={new.name} {restarts}",
                )
            )
        elif new.state == "terminated" and old.state != "terminated":
            text = _exit_text(new.exit_code, new.reason, new.signal)
            events.append(
                self._event(
                    EventKind.CONTAINER_DIED,
                    pod,
                    event_time(new.finished_at, observed),
                    new.reason,
                    f"container={new.name} {text} {restarts}".strip(),
                )
            )
        if new.state == "running" and (old.state != "running" or old.started_at != new.started_at):
            events.append(
                self._event(
                    EventKind.CONTAINER_STARTED,
                    pod,
                    event_time(new.started_at, observed),
                    "kubelet",
                    f"container={new.name} {restarts}",
                )
            )
        backing_off = new.state == "waiting" and new.reason == "CrashLoopBackOff"
        was_backing_off = old.state == "waiting" and old.reason == "CrashLoopBackOff"
        if backing_off and (not was_backing_off or new.restart_count != old.restart_count):
            seconds = _back_off_seconds(new.message)
            wait = f"backoff={seconds} " if seconds is not None else ""
            events.append(
                self._event(EventKind.BACK_OFF, pod, observed, "CrashLoopBackOff", f"{wait}container={new.name} {restarts}")
            )
        return events

    def _readiness(self, old: PodRecord, new: PodRecord, observed: float) -> list[ClusterEvent]:
        if old.ready == new.ready:
            return []
        condition = new.condition("Ready")
        ts = event_time(condition.last_transition if condition else None, observed)
        if new.ready:
            return [self._event(EventKind.POD_READY, new, ts)]
        reason = condition.reason if condition else ""
        return [self._event(EventKind.POD_NOT_READY, new, ts, reason)]

    def _termination(self, old: PodRecord, new: PodRecord, observed: float) -> list[ClusterEvent]:
        events: list[ClusterEvent] = []
        disruption = new.condition(DISRUPTION_CONDITION)
        evicted_reason = ""
        evicted_ts: float | None = None
        if disruption is not None and disruption.status == "True" and old.condition(DISRUPTION_CONDITION) != disruption:
            evicted_reason, evicted_ts = disruption.reason or "Evicted", disruption.last_transition
        elif new.status_reason == "Evicted" and old.status_reason != "Evicted":
            evicted_reason = "Evicted"
        if evicted_reason and self._causes.first_eviction(new.name):
            events.append(
                self._event(
                    EventKind.POD_EVICTED,
                    new,
                    event_time(evicted_ts, observed),
                    self._causes.pod(new.name) or evicted_reason,
                    disruption.message if disruption is not None else new.status_message,
                )
            )
        if new.terminating and not old.terminating:
            grace = new.deletion_grace_period_seconds
            # deletionTimestamp is when the grace period ends: the request came `grace` earlier.
            started = None if new.deletion_timestamp is None else new.deletion_timestamp - (grace or 0)
            events.append(
                self._event(
                    EventKind.POD_TERMINATING,
                    new,
                    event_time(started, observed),
                    self._causes.pod(new.name),
                    f"gracePeriodSeconds={grace}" if grace is not None else "",
                )
            )
        return events


class NodeTracker(Tracker):
    """Nodes: Ready condition, taints, cordons."""

    def __init__(self, causes: Causes) -> None:
        super().__init__()
        self._causes = causes

    def changes(self, old: object | None, new: object | None, observed: float) -> list[ClusterEvent]:
        assert old is None or isinstance(old, NodeRecord)
        assert new is None or isinstance(new, NodeRecord)
        if old is None or new is None:
            return []  # nodes joining or leaving the cluster are not in the vocabulary
        events: list[ClusterEvent] = []
        if old.ready != new.ready:
            condition = next((c for c in new.conditions if c.type == "Ready"), None)
            ts = event_time(condition.last_transition if condition else None, observed)
            kind = EventKind.NODE_READY if new.ready == "True" else EventKind.NODE_NOT_READY
            reason = condition.reason if condition else ""
            events.append(self._event(kind, new, ts, reason, f"status={new.ready}"))
        old_taints = {t.text(): t for t in old.taints if t.key != UNSCHEDULABLE_TAINT}
        new_taints = {t.text(): t for t in new.taints if t.key != UNSCHEDULABLE_TAINT}
        for text, taint in new_taints.items():
            if text not in old_taints:
                events.append(self._event(EventKind.NODE_TAINTED, new, event_time(taint.time_added, observed), "", text))
        for text in old_taints:
            if text not in new_taints:
                events.append(self._event(EventKind.NODE_UNTAINTED, new, observed, "", text))
        if new.unschedulable != old.unschedulable:
            kind = EventKind.NODE_CORDONED if new.unschedulable else EventKind.NODE_UNCORDONED
            events.append(self._event(kind, new, observed, self._causes.node(new.name)))
        return events

    def _event(self, kind: EventKind, node: NodeRecord, ts: float, reason: str = "", detail: str = "") -> ClusterEvent:
        return ClusterEvent(ts=ts, kind=kind, object="node", name=node.name, node=node.name, reason=reason, detail=detail)


@dataclass(frozen=True)
class _Route:
    pod: str
    node: str
    address: str


class EndpointTracker(Tracker):
    """The Service's ready endpoints, across all of its EndpointSlices.

    An endpoint may move between slices; only the union counts, so the tracker compares
    the union of ready endpoints before and after each change.
    """

    def __init__(self, port: Callable[[], int | None] = lambda: None) -> None:
        super().__init__()
        self._port = port

    def _routes(self, slices: Iterable[object]) -> dict[str, _Route]:
        routes: dict[str, _Route] = {}
        for item in slices:
            assert isinstance(item, EndpointSliceRecord)
            port = item.ports[0] if item.ports else self._port()
            for endpoint in item.endpoints:
                if not endpoint.ready or not endpoint.addresses:
                    continue
                address = endpoint.addresses[0]
                key = endpoint.pod or address
                shown = f"{address}:{port}" if port else address
                routes[key] = _Route(key, endpoint.node or "", shown)
        return routes

    def apply(self, type_: str, record: object, observed: float) -> list[ClusterEvent]:
        before = self._routes(self.known.values())
        key = self.key(record)
        if type_ == "DELETED":
            self.known.pop(key, None)
        else:
            self.known[key] = record
        return self._difference(before, self._routes(self.known.values()), observed)

    def sync(self, items: Iterable[object], observed: float, *, baseline: bool) -> list[ClusterEvent]:
        before = self._routes(self.known.values())
        self.known = {self.key(item): item for item in items}
        if baseline:
            return []
        return self._difference(before, self._routes(self.known.values()), observed)

    def changes(self, old: object | None, new: object | None, observed: float) -> list[ClusterEvent]:
        raise NotImplementedError("EndpointTracker compares unions in apply/sync")

    def _difference(self, before: Mapping[str, _Route], after: Mapping[str, _Route], observed: float) -> list[ClusterEvent]:
        events = [
            ClusterEvent(observed, EventKind.ENDPOINT_ADDED, "endpoint", r.pod, r.node, "EndpointSlice", f"address={r.address}")
            for key, r in sorted(after.items())
            if key not in before
        ]
        events += [
            ClusterEvent(observed, EventKind.ENDPOINT_REMOVED, "endpoint", r.pod, r.node, "EndpointSlice", f"address={r.address}")
            for key, r in sorted(before.items())
            if key not in after
        ]
        return events


# The new replica count in the HPA controller's SuccessfulRescale event message.
_NEW_SIZE = re.compile(r"New size: (\d+)")


class EventTracker(Tracker):
    """core/v1 Events: the evictions (and cancelled evictions) the pod objects alone may
    not show (taint manager), and the HorizontalPodAutoscaler's rescales (`hpa_scaled`,
    the new size and its reason)."""

    def __init__(self, causes: Causes) -> None:
        super().__init__()
        self._causes = causes

    def changes(self, old: object | None, new: object | None, observed: float) -> list[ClusterEvent]:
        assert new is None or isinstance(new, EventRecord)
        if new is None or old is not None:
            return []  # an Event's count going up repeats news already told
        if new.reason == "SuccessfulRescale" and new.object_kind == "HorizontalPodAutoscaler":
            # kube-controller-manager: "New size: 3; reason: cpu resource utilization
            # (percentage of request) above target".
            size = _NEW_SIZE.search(new.message)
            if size is not None:
                return [
                    ClusterEvent(
                        ts=event_time(new.ts, observed),
                        kind=EventKind.HPA_SCALED,
                        object="hpa",
                        name=new.object_name,
                        reason=new.reason,
                        detail=f"replicas={size.group(1)} message={new.message}",
                    )
                ]
        if new.object_kind != "Pod":
            return []
        if new.reason == "TaintManagerEviction" and new.message.startswith(EVICTION_CANCELLED_PREFIX):
            return [
                ClusterEvent(
                    ts=event_time(new.ts, observed),
                    kind=EventKind.POD_EVICTION_CANCELLED,
                    object="pod",
                    name=new.object_name,
                    reason=new.reason,
                    detail=new.message,
                )
            ]
        if new.reason in EVICTION_EVENT_REASONS:
            if self._causes.first_eviction(new.object_name):
                return [
                    ClusterEvent(
                        ts=event_time(new.ts, observed),
                        kind=EventKind.POD_EVICTED,
                        object="pod",
                        name=new.object_name,
                        reason=new.reason,
                        detail=new.message,
                    )
                ]
        return []


class SampleSink:
    """Thread-safe queue of HPA evaluations from the watcher thread to `Cluster.autoscaler_samples()`."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[AutoscalerSample] = queue.SimpleQueue()

    def put(self, sample: AutoscalerSample) -> None:
        self._queue.put(sample)

    def drain(self) -> list[AutoscalerSample]:
        samples: list[AutoscalerSample] = []
        while True:
            try:
                samples.append(self._queue.get_nowait())
            except queue.Empty:
                return samples


# The HPA controller's status conditions (autoscaling/v2), and the AbleToScale reasons
# that say a stabilization window held the recommendation back.
ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED = "AbleToScale", "ScalingActive", "ScalingLimited"
STABILIZED_REASONS = frozenset({"ScaleUpStabilized", "ScaleDownStabilized"})


def _evaluation(record: AutoscalerRecord) -> tuple[object, ...]:
    """What one evaluation writes to the status: equal tuples are the same evaluation."""
    return (
        record.current_replicas,
        record.desired_replicas,
        record.utilization,
        record.average_value,
        record.last_scale_time,
        tuple((c.type, c.status, c.reason) for c in record.conditions),
    )


def _out_of_range(record: AutoscalerRecord) -> str:
    """The sim's reason when the count found was outside [minReplicas, maxReplicas], else "".

    reconcileAutoscaler corrects such a count before it reads any metric; a target at 0
    replicas comes before that (autoscaling disabled, ScalingActive=False ScalingDisabled).
    """
    current = record.current_replicas
    if current == 0:
        return ""
    if record.max_replicas and current > record.max_replicas:
        return "current replicas above maxReplicas"
    if current < record.min_replicas:
        return "current replicas below minReplicas"
    return ""


def _decided(record: AutoscalerRecord) -> bool:
    """Whether this evaluation set desiredReplicas: not when the metric failed (or the
    target is at 0), where the status keeps the previous decision."""
    active = record.condition(SCALING_ACTIVE)
    return bool(_out_of_range(record)) or active is None or active.status != "False"


def autoscaler_reason(record: AutoscalerRecord) -> str:
    """What decided the evaluation, in the sim's words (autoscaler.csv `reason`), from the status.

    kube-controller-manager (podautoscaler reconcileAutoscaler) keeps conditions from
    earlier syncs, so they are read in the order it sets them: a count outside
    [minReplicas, maxReplicas] is corrected before any metric is read (ScalingActive may
    be stale then); ScalingActive=False means the metric failed (or the target is at 0)
    and nothing was decided; otherwise ScalingLimited=True names the bound (ScaleUpLimit,
    TooManyReplicas, ...), then AbleToScale a stabilization window, then
    ScalingLimited=False says DesiredWithinRange.
    """
    bounded = _out_of_range(record)
    if bounded:
        return bounded
    active = record.condition(SCALING_ACTIVE)
    if active is not None and active.status == "False":
        return active.reason
    limited = record.condition(SCALING_LIMITED)
    if limited is not None and limited.status == "True":
        return limited.reason
    able = record.condition(ABLE_TO_SCALE)
    if able is not None and (able.status == "False" or able.reason in STABILIZED_REASONS):
        return able.reason
    return limited.reason if limited is not None else ""


class AutoscalerTracker(Tracker):
    """The workload's HorizontalPodAutoscaler: one `AutoscalerSample` per evaluation seen.

    The controller writes the status only when it changed (updateStatusIfNeeded), and a
    fresh CPU average almost always changes it, so each status change is one evaluation;
    an evaluation that found everything as before is not seen (its row would repeat the
    last one). A status never written (no condition yet) is no evaluation. `ts` is when
    the change was seen, or the lastScaleTime it carries (whole seconds, kept as
    `event_time` keeps API times). Columns the status does not show (recommendation,
    ready, unready, missing) stay empty; `desired` is `current` when the evaluation
    decided nothing (ScalingActive=False within the bounds), as on sim.
    """

    def __init__(self, target: str, target_utilization: int, samples: SampleSink) -> None:
        super().__init__()
        self._target = target
        self._target_utilization = target_utilization
        self._samples = samples

    def changes(self, old: object | None, new: object | None, observed: float) -> list[ClusterEvent]:
        assert old is None or isinstance(old, AutoscalerRecord)
        assert new is None or isinstance(new, AutoscalerRecord)
        if new is None or new.target_name != self._target or not new.conditions:
            return []
        if old is not None and _evaluation(old) == _evaluation(new):
            return []  # metadata or spec only
        self._samples.put(self.sample(old, new, observed))
        return []

    def sample(self, old: AutoscalerRecord | None, new: AutoscalerRecord, observed: float) -> AutoscalerSample:
        # A first sighting cannot tell an old lastScaleTime from this evaluation's.
        rescaled = old is not None and new.last_scale_time is not None and old.last_scale_time != new.last_scale_time
        return AutoscalerSample(
            ts=event_time(new.last_scale_time, observed) if rescaled else observed,
            name=self._target,
            current=new.current_replicas,
            desired=new.desired_replicas if _decided(new) else new.current_replicas,
            recommendation=None,
            utilization=new.utilization,
            target=new.target_utilization if new.target_utilization is not None else self._target_utilization,
            reason=autoscaler_reason(new),
        )


class ResourceWatcher:
    """List, then watch from the list's resourceVersion; on 410 Gone, relist and go on.

    `step()` does one list or one watch session (until the server ends it, after
    `timeout_seconds`); `run()` loops `step()` in a thread until `stop()`. Errors other
    than 410 are retried with a growing pause; `failure` holds the latest one while it
    lasts, so the cluster can report a watch that stays broken.
    """

    def __init__(
        self,
        api: KubeApi,
        kind: WatchKind,
        namespace: str | None,
        tracker: Tracker,
        sink: EventSink,
        *,
        label_selector: str = "",
        timeout_seconds: int = 60,
        clock: Callable[[], float] = time.time,
        retry_seconds: float = 1.0,
    ) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.tracker = tracker
        self.sink = sink
        self.label_selector = label_selector
        self.timeout_seconds = timeout_seconds
        self.clock = clock
        self.retry_seconds = retry_seconds
        self.resource_version: str | None = None
        self.relists = 0
        self.failure: ClusterError | None = None
        self.failing_since: float | None = None
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _list(self):  # type: ignore[no-untyped-def]
        if self.kind == "pods":
            return self.api.list_pods(self.namespace or "", self.label_selector)
        if self.kind == "endpointslices":
            return self.api.list_endpoint_slices(self.namespace or "", self.label_selector)
        if self.kind == "events":
            return self.api.list_events(self.namespace or "")
        if self.kind == "horizontalpodautoscalers":
            return self.api.list_autoscalers(self.namespace or "")
        return self.api.list_nodes()

    def relist(self) -> None:
        listing = self._list()
        baseline = self.relists == 0
        self.sink.put_all(self.tracker.sync(listing.items, self.clock(), baseline=baseline))
        self.relists += 1
        self.resource_version = listing.resource_version

    def step(self) -> None:
        """One list (when there is no resourceVersion to resume from) or one watch session."""
        if self.resource_version is None:
            self.relist()
            return
        stream = self.api.watch(
            self.kind,
            self.namespace,
            self.resource_version,
            label_selector=self.label_selector,
            timeout_seconds=self.timeout_seconds,
        )
        with self._lock:
            if self._stop.is_set():
                stream.close()
                return
            self._stream = stream
        try:
            for event in stream:
                if event.type != "BOOKMARK" and event.object is not None:
                    self.sink.put_all(self.tracker.apply(event.type, event.object, self.clock()))
                if event.resource_version:
                    self.resource_version = event.resource_version
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._stream = None
            stream.close()

    def run(self) -> None:
        pause = self.retry_seconds
        while not self._stop.is_set():
            try:
                self.step()
                self.failure, self.failing_since, pause = None, None, self.retry_seconds
            except WatchExpired:
                self.resource_version = None  # relist on the next step: no event is lost
            except ClusterError as exc:
                if self._stop.is_set():
                    return
                self.failure = exc
                if self.failing_since is None:
                    self.failing_since = self.clock()
                self._stop.wait(pause)
                pause = min(pause * 2, 10.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"chaoslab-watch-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
