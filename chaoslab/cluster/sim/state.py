"""The simulated cluster's state: what an API server would store, plus each node's reality.

Why it exists: the kubelets, the controllers and the fault injector all read and write
one consistent picture, as Kubernetes components do through the API server. These
records are mutable and never leave the `sim` package: the outside world only sees the
frozen snapshots of `chaoslab.cluster.base` (Pod, Node, ClusterEvent). Every mutation
happens on the control-plane thread or under the `World.lock`, and every state change
that a person would want on a chart goes through `World.emit` at the moment it happens.

Times inside are `time.monotonic()` seconds (intervals must not jump with the wall
clock); events carry wall-clock seconds from the injected clock.
"""

from __future__ import annotations

import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chaoslab.cluster.base import ClusterEvent, EventKind, Node, Pod
from chaoslab.cluster.sim.probes import ProbeResult
from chaoslab.cluster.sim.processes import ManagedProcess, PortAllocator, Reaper
from chaoslab.spec import ProbeSpec, SimTimings, WorkloadSpec

# Taints the node-lifecycle controller manages (k8s.io/api/core/v1 well-known taints).
TAINT_UNREACHABLE_NO_EXECUTE = "node.kubernetes.io/unreachable:NoExecute"
TAINT_UNREACHABLE_NO_SCHEDULE = "node.kubernetes.io/unreachable:NoSchedule"
# Shown on a cordoned node (TaintNodesByCondition), as `kubectl describe node` does.
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable:NoSchedule"

NODE_UP = "up"
NODE_CRASHED = "crashed"
NODE_HUNG = "hung"

# An endpoint as the Endpoints controller records it: the pod's address and its node.
Endpoint = tuple[tuple[str, int], str]

CONTAINER_WAITING = "waiting"  # not started yet, or in CrashLoopBackOff
CONTAINER_RUNNING = "running"
CONTAINER_STOPPING = "stopping"  # SIGTERM sent (liveness failure), waiting for exit


class EventLog:
    """Thread-safe, ordered record of ClusterEvents, drained by `SimCluster.events()`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: deque[ClusterEvent] = deque()
        self._last_ts = float("-inf")

    def emit(
        self,
        kind: EventKind,
        obj: str,
        name: str,
        node: str = "",
        reason: str = "",
        detail: str = "",
    ) -> ClusterEvent:
        with self._lock:
            # Never go backwards, so emission order and ts order always agree.
            ts = max(self._clock(), self._last_ts)
            self._last_ts = ts
            event = ClusterEvent(ts=ts, kind=kind, object=obj, name=name, node=node, reason=reason, detail=detail)
            self._queue.append(event)
        return event

    def drain(self) -> Iterator[ClusterEvent]:
        with self._lock:
            events = list(self._queue)
            self._queue.clear()
        return iter(events)


@dataclass(eq=False)
class ProbeTracker:
    """One probe of one container: schedule, counters, the probe in flight."""

    spec: ProbeSpec
    next_due: float
    successes: int = 0
    failures: int = 0
    in_flight: Future[ProbeResult] | None = None
    last_failure: str = ""


# Every pod's address under the user-space proxy (and before a pod has its own).
LOOPBACK_IP = "127.0.0.1"


class PodIPs(Protocol):
    """Where pod IPs come from and go back to (kernelservice.KernelServices)."""

    def allocate(self, node: str) -> str: ...

    def release(self, ip: str) -> None: ...


@dataclass(eq=False)
class SimPod:
    name: str
    deployment: str
    port: int
    created: float
    sequence: int  # creation order, for "newer before older"
    # The pod's IP: its own from its node's subnet on the kernel Service path
    # (kernelservice.py), from scheduling until the pod object is gone; 127.0.0.1, shared
    # by every pod, under the user-space proxy.
    ip: str = LOOPBACK_IP
    log_path: Path | None = None
    node: str | None = None
    scheduled_at: float | None = None
    pending_reason: str = ""
    pending_reported: bool = False
    # container
    container: str = CONTAINER_WAITING
    start_due: float | None = None  # first start (after pod_start_delay) or back-off end
    process: ManagedProcess | None = None
    generation: int = 0  # container instance; probe results of older instances are ignored
    started_at: float | None = None
    ever_started: bool = False
    restart_count: int = 0
    back_off: float = 0.0  # the kubelet's current back-off for this container
    waiting_reason: str = "ContainerCreating"
    last_exit: str = ""
    stop_deadline: float | None = None
    stop_reason: str = ""
    # readiness: `ready` is the API's Ready condition; `kubelet_ready` what the kubelet
    # itself last decided (probes, container state). They differ after the node-lifecycle
    # controller's MarkPodsNotReady, until the kubelet's status sync writes its own again.
    ready: bool = False
    kubelet_ready: bool = False
    ready_since: float | None = None
    ready_transition: float | None = None  # the Ready condition's lastTransitionTime
    readiness: ProbeTracker | None = None
    liveness: ProbeTracker | None = None
    # deletion
    terminating: bool = False
    deletion_grace: float = 0.0
    term_deadline: float | None = None  # set when the kubelet sends SIGTERM
    eviction_due: float | None = None  # taint manager: NoExecute toleration runs out
    # volume (stateful.py): the folder the container sees as its data, and whether it is
    # an emptyDir that goes with the pod object
    data_dir: Path | None = None
    scratch: bool = False

    @property
    def phase(self) -> str:
        if self.terminating:
            return "Terminating"
        if self.node is None or not self.ever_started:
            return "Pending"
        return "Running"

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, self.port)

    def snapshot(self) -> Pod:
        return Pod(
            name=self.name,
            node=self.node,
            phase=self.phase,
            ready=self.ready and not self.terminating,
            restart_count=self.restart_count,
            endpoint=f"{self.ip}:{self.port}",
        )


@dataclass(eq=False)
class SimNode:
    name: str
    last_heartbeat: float
    next_heartbeat: float
    state: str = NODE_UP  # the machine's reality: up | crashed | hung
    ready: str = "True"  # the API's Ready condition: True | Unknown
    taints: list[str] = field(default_factory=list)
    unschedulable: bool = False
    no_execute_since: float | None = None

    def schedulable(self) -> bool:
        return self.ready == "True" and not self.unschedulable and not self.taints

    def snapshot(self) -> Node:
        taints = list(self.taints)
        if self.unschedulable:
            taints.append(TAINT_UNSCHEDULABLE)
        return Node(name=self.name, ready=self.ready, schedulable=not self.unschedulable, taints=tuple(taints))


@dataclass(eq=False)
class SimDeployment:
    name: str
    spec: WorkloadSpec
    desired: int
    pods: dict[str, SimPod] = field(default_factory=dict)
    sync_due: float | None = None  # the ReplicaSet controller's next reconcile
    # Endpoints: what the controller computed, what is on its way, what the proxy has.
    endpoint_target: dict[str, Endpoint] = field(default_factory=dict)
    publish_queue: deque[tuple[float, dict[str, Endpoint]]] = field(default_factory=deque)
    published: dict[str, Endpoint] = field(default_factory=dict)
    blackhole: frozenset[tuple[str, int]] = frozenset()

    def active_pods(self) -> list[SimPod]:
        """Pods the ReplicaSet counts: not terminating (upstream FilterActivePods)."""
        return [pod for pod in self.pods.values() if not pod.terminating]

    def sync_due_now(self, needed: bool, now: float, delay: float) -> bool:
        """Whether the workload's controller acts now: `delay` after it first saw that
        something is `needed` (the watch-event latency), and never when nothing is."""
        if not needed:
            self.sync_due = None
            return False
        if self.sync_due is None:
            self.sync_due = now + delay
        if now < self.sync_due:
            return False
        self.sync_due = None
        return True


@dataclass(eq=False)
class Drain:
    """A node-drain in progress (kubectl drain: cordon, then evict with retries)."""

    node: str
    fault_id: str
    grace: float | None
    deadline: float
    next_attempt: float
    finished: bool = False


@dataclass
class World:
    """Everything the control plane knows, behind one lock."""

    timings: SimTimings
    events: EventLog
    nodes: dict[str, SimNode]
    ports: PortAllocator
    # Every process group started is registered here (processes.py, reaper.py).
    reaper: Reaper | None = None
    # The kernel Service path (kernelservice.py): pod IPs come from here, and every pod
    # process enters the run's network with `enter`; both None under the user-space proxy.
    addresses: PodIPs | None = None
    enter: Callable[[], None] | None = None
    deployments: dict[str, SimDeployment] = field(default_factory=dict)
    drains: dict[str, Drain] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def pods_on(self, node: str) -> list[SimPod]:
        return [
            pod
            for deployment in self.deployments.values()
            for pod in deployment.pods.values()
            if pod.node == node
        ]

    def assign_ip(self, pod: SimPod, node: str) -> None:
        """The pod's sandbox gets its IP on `node` (kernel Service path only)."""
        if self.addresses is not None:
            pod.ip = self.addresses.allocate(node)

    def release_ip(self, pod: SimPod) -> None:
        """The pod's sandbox is gone, and its IP with it."""
        if self.addresses is not None and pod.ip != LOOPBACK_IP:
            self.addresses.release(pod.ip)
            pod.ip = LOOPBACK_IP

    def all_pods(self) -> list[SimPod]:
        return [pod for deployment in self.deployments.values() for pod in deployment.pods.values()]

    def emit(
        self, kind: EventKind, obj: str, name: str, node: str = "", reason: str = "", detail: str = ""
    ) -> ClusterEvent:
        return self.events.emit(kind, obj, name, node=node or "", reason=reason, detail=detail)

    # --- what the API server does when a component writes ------------------------------

    def set_ready(self, pod: SimPod, ready: bool, now: float, reason: str = "", detail: str = "") -> None:
        """The kubelet's write: its own view of the pod's readiness, and the Ready
        condition with it (the condition's event only when it changes)."""
        pod.kubelet_ready = ready
        self._write_ready(pod, ready, now, reason, detail)

    def mark_not_ready(self, pod: SimPod, now: float, reason: str) -> None:
        """The node-lifecycle controller's write (upstream MarkPodsNotReady): the Ready
        condition only; the kubelet, if it is alive, still believes what it believed."""
        self._write_ready(pod, False, now, reason, "")

    def _write_ready(self, pod: SimPod, ready: bool, now: float, reason: str, detail: str) -> None:
        if pod.ready == ready:
            return
        pod.ready = ready
        pod.ready_since = now if ready else None
        pod.ready_transition = now
        kind = EventKind.POD_READY if ready else EventKind.POD_NOT_READY
        self.emit(kind, "pod", pod.name, node=pod.node or "", reason=reason, detail=detail)

    def delete_pod(self, pod: SimPod, grace: float, reason: str, now: float, force: bool = False) -> None:
        """Graceful deletion (the kubelet finishes it) or, with `force`, removal at once.

        An unbound pod has no kubelet to wait for and goes at once, as upstream.
        """
        if force or pod.node is None:
            if pod.process is not None:
                pod.process.kill()
                pod.process = None
            self.remove_pod(pod, reason=reason, detail="gracePeriodSeconds=0" if force else "")
            return
        if pod.terminating:
            # A second delete may only shorten the grace period, as the API allows.
            if grace < pod.deletion_grace:
                pod.deletion_grace = grace
                if pod.term_deadline is not None:
                    pod.term_deadline = min(pod.term_deadline, now + grace)
            return
        pod.terminating = True
        pod.deletion_grace = grace
        pod.eviction_due = None
        self.emit(
            EventKind.POD_TERMINATING,
            "pod",
            pod.name,
            node=pod.node or "",
            reason=reason,
            detail=f"gracePeriodSeconds={grace:g}",
        )

    def remove_pod(self, pod: SimPod, reason: str = "", detail: str = "") -> None:
        """The pod object is gone (the kubelet confirmed, or it was never bound)."""
        deployment = self.deployments.get(pod.deployment)
        if deployment is None or deployment.pods.get(pod.name) is not pod:
            return
        del deployment.pods[pod.name]
        if pod.process is not None:  # only for safety: callers stop it first
            pod.process.kill()
            pod.process = None
        self.ports.release(pod.port)
        self.release_ip(pod)
        if pod.scratch and pod.data_dir is not None and pod.data_dir.exists():
            shutil.rmtree(pod.data_dir)  # an emptyDir is deleted with its pod (stateful.py)
        self.emit(EventKind.POD_DELETED, "pod", pod.name, node=pod.node or "", reason=reason, detail=detail)
