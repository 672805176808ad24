"""The one boundary between the experiment engine and a cluster backend.

The engine asks for domain verbs (deploy, inject a fault, list pods) and never learns
whether it talks to the simulator or to a real API server. Both backends produce the
same value types and the same event vocabulary, so results, analysis and charts are
backend-agnostic. No `kubernetes` type crosses this boundary.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

from chaoslab.cluster.network import ClientNetwork
from chaoslab.spec import FaultSpec, WorkloadSpec


class EventKind(str, Enum):
    """What happened. The closed vocabulary of `events.csv`'s `kind` column.

    Both backends emit exactly these; analysis relies on them (see docs/results.md).
    """

    POD_CREATED = "pod_created"  # the ReplicaSet created the pod object
    POD_PENDING = "pod_pending"  # the scheduler found no node (detail says why)
    POD_SCHEDULED = "pod_scheduled"  # bound to a node (node column)
    CONTAINER_STARTED = "container_started"  # the process is running (restart or first)
    CONTAINER_DIED = "container_died"  # the process exited (detail: exit code / signal)
    CONTAINER_RESTARTED = "container_restarted"  # kubelet restarted it in place
    BACK_OFF = "back_off"  # CrashLoopBackOff: detail has the wait in seconds
    POD_READY = "pod_ready"  # readiness turned True
    POD_NOT_READY = "pod_not_ready"  # readiness turned False
    POD_TERMINATING = "pod_terminating"  # deletion started (grace period running)
    POD_DELETED = "pod_deleted"  # the pod object is gone
    POD_EVICTED = "pod_evicted"  # taint manager or drain eviction
    # The taint manager cancelled a pod's pending NoExecute eviction: its node is
    # Ready again and the taint was removed (upstream event "Cancelling deletion of Pod").
    POD_EVICTION_CANCELLED = "pod_eviction_cancelled"
    ENDPOINT_ADDED = "endpoint_added"  # the Service routes to this pod now
    ENDPOINT_REMOVED = "endpoint_removed"  # the Service no longer routes to this pod
    NODE_READY = "node_ready"  # node Ready=True (registered, or its kubelet posts status again)
    NODE_NOT_READY = "node_not_ready"  # node Ready=False or Unknown (detail says which)
    NODE_TAINTED = "node_tainted"  # detail: the taint, e.g. node.kubernetes.io/unreachable:NoExecute
    NODE_UNTAINTED = "node_untainted"
    NODE_CORDONED = "node_cordoned"
    NODE_UNCORDONED = "node_uncordoned"
    SCALED = "scaled"  # desired replicas changed (detail: replicas=N)
    HPA_SCALED = "hpa_scaled"  # the HorizontalPodAutoscaler changed replicas (detail: the metric it saw)
    FAULT_INJECTED = "fault_injected"  # one of our faults (name: fault id, detail: targets)
    FAULT_RESTORED = "fault_restored"


@dataclass(frozen=True)
class ClusterEvent:
    """One timestamped state change, a row of `events.csv`.

    ts: wall-clock epoch seconds. object: pod | node | endpoint | deployment | fault.
    reason: the cause where known (e.g. pod-delete, TaintManagerEviction, ReplicaSet).
    """

    ts: float
    kind: EventKind
    object: str
    name: str
    node: str = ""
    reason: str = ""
    detail: str = ""

    def row(self) -> dict[str, object]:
        return {
            "ts": self.ts,
            "kind": self.kind.value,
            "object": self.object,
            "name": self.name,
            "node": self.node,
            "reason": self.reason,
            "detail": self.detail,
        }


EVENT_COLUMNS = ("ts", "kind", "object", "name", "node", "reason", "detail")


@dataclass(frozen=True)
class AutoscalerSample:
    """One evaluation of the workload's HorizontalPodAutoscaler, a row of `autoscaler.csv`.

    ts: wall-clock epoch seconds. current: replicas before it (the scale's spec);
    desired: replicas it set. recommendation: what the CPU metric alone asked for (None:
    no metric). utilization: average CPU utilisation in whole percent of the request
    (None: no metric); target: the averageUtilization target. ready/unready/missing:
    pods whose sample counted, was set aside (not ready, just started) or was absent.
    reason: what limited the change (DesiredWithinRange, ScaleUpLimit, ...).
    """

    ts: float
    name: str
    current: int
    desired: int
    recommendation: int | None
    utilization: int | None
    target: int
    ready: int | None = None
    unready: int | None = None
    missing: int | None = None
    reason: str = ""

    def row(self) -> dict[str, object]:
        return {column: getattr(self, column) for column in AUTOSCALER_COLUMNS}


AUTOSCALER_COLUMNS = (
    "ts", "name", "current", "desired", "recommendation", "utilization", "target", "ready", "unready", "missing", "reason"
)


@dataclass(frozen=True)
class Pod:
    """A snapshot of one pod of the workload."""

    name: str
    node: str | None
    phase: str  # Pending | Running | Terminating | Failed
    ready: bool
    restart_count: int = 0
    endpoint: str | None = None  # host:port the Service routes to, when known


@dataclass(frozen=True)
class Node:
    """A snapshot of one node."""

    name: str
    ready: str  # "True" | "False" | "Unknown"
    schedulable: bool = True
    taints: tuple[str, ...] = ()
    control_plane: bool = False


@dataclass(frozen=True)
class Deployment:
    """A handle to what `deploy` created; opaque to the engine beyond these fields."""

    name: str
    namespace: str
    replicas: int


@dataclass(frozen=True)
class Injection:
    """A fault as it was carried out: what it hit, and what must be undone later."""

    fault_id: str
    action: str
    ts: float
    targets: tuple[str, ...]
    detail: str = ""
    # Whether `restore` has anything to undo (node faults, cordons, scale does not).
    restorable: bool = False
    ready_before: int | None = None
    ready_after: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Cluster(Protocol):
    """What an experiment may ask of a cluster. Implementations: sim, kubernetes.

    Every method raises `chaoslab.errors.ClusterError` (or a subclass) on failure; no
    backend exception escapes. `close` must be safe to call more than once and from a
    signal-driven teardown path, and must leave nothing behind.
    """

    def deploy(self, workload: WorkloadSpec) -> Deployment: ...

    def wait_ready(self, deployment: Deployment, timeout: float) -> None: ...

    def service_url(self, deployment: Deployment) -> str: ...

    def client_network(self) -> ClientNetwork:
        """Where the load generator and probes must stand to reach the Service URLs
        (cluster/network.py): the host's network, or the sim's private one."""
        ...

    def ordinal_url(self, deployment: Deployment, ordinal: int) -> str:
        """A stable address of one StatefulSet pod (`<name>-<ordinal>`), whichever
        incarnation of it runs: a per-ordinal Service."""
        ...

    def pods(self, deployment: Deployment) -> list[Pod]: ...

    def nodes(self) -> list[Node]: ...

    def check_faults(self, deployment: Deployment, faults: Sequence[FaultSpec]) -> None:
        """Refuse (UsageError) a fault this deployment cannot take, once it is ready and
        before anything is measured, rather than when the fault fires mid-trial."""
        ...

    def inject(
        self, deployment: Deployment, fault: FaultSpec, fault_id: str, rng: random.Random
    ) -> Injection: ...

    def restore(self, injection: Injection) -> None: ...

    def events(self) -> Iterator[ClusterEvent]:
        """Events recorded since the previous call (non-blocking drain)."""
        ...

    def autoscaler_samples(self) -> Iterator[AutoscalerSample]:
        """HPA evaluations seen since the previous call (non-blocking drain; none without autoscaling)."""
        ...

    def teardown(self, deployment: Deployment) -> None: ...

    def close(self) -> None: ...
