"""What the kubernetes backend reads from an API server, as plain frozen values.

Why it exists: `chaoslab.cluster.kube.client` is the only module that imports the
`kubernetes` package. It converts the client's models into these records, so everything
else in the backend (deploy, faults, watches, safety) is plain Python that a test can
drive with a fake of `KubeApi` holding realistic records: pods with statuses, nodes with
labels and taints, EndpointSlices, watch streams that expire with 410 Gone. Timestamps
are wall-clock epoch seconds (the API's RFC 3339 times, converted), None when absent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chaoslab.errors import ClusterError

# Label the API server puts on every control-plane node (kubeadm, kind, minikube);
# `node-role.kubernetes.io/master` is its pre-1.24 name, still seen on old clusters.
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


class WatchExpired(ClusterError):
    """The watch's resourceVersion is too old (HTTP 410 Gone): relist, then watch again."""


class EvictionBlocked(ClusterError):
    """The Eviction API refused (HTTP 429): a PodDisruptionBudget allows no disruption now."""


class NotFound(ClusterError):
    """The object does not exist (HTTP 404)."""


class ExecUnsupported(ClusterError):
    """The container cannot run the command (no such binary, e.g. no /bin/sh in the image)."""


@dataclass(frozen=True)
class Condition:
    """One entry of status.conditions (pods, nodes, Deployments)."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""
    last_transition: float | None = None


@dataclass(frozen=True)
class ContainerStatus:
    """One entry of a pod's status.containerStatuses, flattened.

    state is the current state (waiting | running | terminated); `last_*` describe
    lastState.terminated, the previous run, when the container has restarted.
    """

    name: str
    ready: bool = False
    restart_count: int = 0
    state: Literal["waiting", "running", "terminated", ""] = ""
    reason: str = ""  # waiting/terminated reason: CrashLoopBackOff, Error, OOMKilled...
    message: str = ""
    started_at: float | None = None  # running.startedAt or terminated.startedAt
    finished_at: float | None = None  # terminated.finishedAt
    exit_code: int | None = None
    signal: int | None = None
    last_exit_code: int | None = None
    last_reason: str = ""
    last_finished_at: float | None = None


@dataclass(frozen=True)
class PodRecord:
    name: str
    namespace: str
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    node: str | None = None
    phase: str = "Pending"  # Pending | Running | Succeeded | Failed | Unknown
    conditions: tuple[Condition, ...] = ()
    containers: tuple[ContainerStatus, ...] = ()
    container_names: tuple[str, ...] = ()  # spec.containers[].name, in order
    images: tuple[str, ...] = ()  # spec.containers[].image, in order
    pod_ip: str | None = None
    created: float | None = None
    deletion_timestamp: float | None = None
    deletion_grace_period_seconds: int | None = None
    status_reason: str = ""  # status.reason, e.g. Evicted
    status_message: str = ""
    owner_kind: str = ""  # kind of the first ownerReference (ReplicaSet for a Deployment's pods)
    resource_version: str = ""

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def ready(self) -> bool:
        condition = self.condition("Ready")
        return condition is not None and condition.status == "True"

    @property
    def terminating(self) -> bool:
        return self.deletion_timestamp is not None

    @property
    def restart_count(self) -> int:
        return sum(c.restart_count for c in self.containers)


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute
    value: str = ""
    time_added: float | None = None  # set by the API for NoExecute taints

    def text(self) -> str:
        """`key[=value]:Effect`, as kubectl shows a taint."""
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


@dataclass(frozen=True)
class NodeRecord:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    conditions: tuple[Condition, ...] = ()
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address): InternalIP, Hostname...
    resource_version: str = ""

    @property
    def control_plane(self) -> bool:
        return any(label in self.labels for label in CONTROL_PLANE_LABELS)

    @property
    def ready(self) -> str:
        condition = next((c for c in self.conditions if c.type == "Ready"), None)
        return condition.status if condition is not None else "Unknown"

    def address(self, *types: str) -> str | None:
        """The first address of the first of `types` present (e.g. InternalIP, ExternalIP)."""
        for wanted in types:
            for type_, address in self.addresses:
                if type_ == wanted:
                    return address
        return None


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of an EndpointSlice (discovery.k8s.io/v1)."""

    addresses: tuple[str, ...]
    pod: str | None = None  # targetRef.name when it is a Pod
    node: str | None = None
    ready: bool = False  # conditions.ready (nil is read as true, as kube-proxy does)
    serving: bool = False
    terminating: bool = False


@dataclass(frozen=True)
class EndpointSliceRecord:
    name: str
    namespace: str
    service: str  # label kubernetes.io/service-name
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[int, ...] = ()
    resource_version: str = ""


@dataclass(frozen=True)
class EventRecord:
    """A core/v1 Event about an object in the namespace."""

    name: str
    namespace: str
    reason: str
    message: str = ""
    type: str = "Normal"
    object_kind: str = ""
    object_name: str = ""
    ts: float | None = None  # eventTime, else lastTimestamp, else firstTimestamp, else creation
    count: int = 1
    resource_version: str = ""


@dataclass(frozen=True)
class AutoscalerRecord:
    """A HorizontalPodAutoscaler (autoscaling/v2): its bounds and its last evaluation.

    The status is what kube-controller-manager wrote at its latest sync (it writes only
    when something changed): current_replicas is the scale's spec.replicas it found,
    desired_replicas what it decided (left at the previous decision when the metric could
    not be read); utilization and average_value are the CPU metric of currentMetrics.
    """

    name: str
    namespace: str
    target_kind: str = ""  # spec.scaleTargetRef
    target_name: str = ""
    min_replicas: int = 1  # spec.minReplicas (autoscaling/v2 defaults it to 1)
    max_replicas: int = 0
    target_utilization: int | None = None  # the cpu Resource metric's target.averageUtilization
    current_replicas: int = 0  # status.currentReplicas
    desired_replicas: int = 0  # status.desiredReplicas
    utilization: int | None = None  # status.currentMetrics[cpu].resource.current.averageUtilization
    average_value: str = ""  # ... .current.averageValue, a quantity such as "52m"
    last_scale_time: float | None = None
    conditions: tuple[Condition, ...] = ()  # AbleToScale, ScalingActive, ScalingLimited
    resource_version: str = ""

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeploymentRecord:
    name: str
    namespace: str
    replicas: int  # spec.replicas
    selector: Mapping[str, str] = field(default_factory=dict)  # spec.selector.matchLabels
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    unavailable_replicas: int = 0
    generation: int = 0
    observed_generation: int = 0
    conditions: tuple[Condition, ...] = ()
    containers: tuple[ContainerSpec, ...] = ()


@dataclass(frozen=True)
class ServicePort:
    port: int
    target_port: str = ""
    node_port: int | None = None
    name: str = ""


@dataclass(frozen=True)
class ServiceRecord:
    name: str
    namespace: str
    type: str = "ClusterIP"  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ip: str | None = None
    ports: tuple[ServicePort, ...] = ()
    load_balancer_ingress: tuple[str, ...] = ()  # ip or hostname of each ingress
    selector: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NamespaceRecord:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    phase: str = "Active"  # Active | Terminating


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""


WatchKind = Literal["pods", "endpointslices", "nodes", "events", "horizontalpodautoscalers"]
Record = PodRecord | NodeRecord | EndpointSliceRecord | EventRecord | AutoscalerRecord


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream. BOOKMARK events carry only the resourceVersion."""

    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    object: Record | None
    resource_version: str


@dataclass(frozen=True)
class Listing:
    """A list call's items and the collection's resourceVersion to watch from."""

    items: tuple[Any, ...]
    resource_version: str


@dataclass(frozen=True)
class Connection:
    """Where the client is connected, for messages and run.json (never credentials)."""

    context: str | None  # None: in-cluster service account
    server: str
    source: str  # "kubeconfig /root/.kube/config" or "in-cluster service account"


class WatchStream(Protocol):
    """An open watch: iterate its events; `close` ends it from another thread."""

    def __iter__(self) -> Iterator[WatchEvent]: ...

    def close(self) -> None: ...


class KubeApi(Protocol):
    """The small set of API calls the kubernetes backend makes.

    Every method raises `ClusterError` (or one of the subclasses above) with the API's
    message kept; no `kubernetes` exception escapes. Bodies are Kubernetes objects as
    plain JSON-shaped dicts (the form `kubectl apply -f` reads).
    """

    connection: Connection

    # namespaces
    def read_namespace(self, name: str) -> NamespaceRecord: ...
    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None: ...
    def delete_namespace(self, name: str) -> None: ...

    # workload objects
    def create_object(self, namespace: str, body: Mapping[str, Any]) -> None:
        """Create a Deployment, StatefulSet, Service, ConfigMap, PodDisruptionBudget or HorizontalPodAutoscaler (by `kind`)."""
        ...

    def delete_object(self, namespace: str, kind: str, name: str) -> None: ...
    def has_resource_metrics(self) -> bool:
        """Whether the cluster serves the resource metrics API (metrics.k8s.io, metrics-server)."""
        ...

    def read_deployment(self, namespace: str, name: str) -> DeploymentRecord: ...
    def patch_deployment_scale(self, namespace: str, name: str, replicas: int) -> None: ...
    def read_service(self, namespace: str, name: str) -> ServiceRecord: ...
    def read_stateful_set(self, namespace: str, name: str) -> DeploymentRecord:
        """A StatefulSet's spec and status in the shape of a Deployment's (same fields)."""
        ...

    def patch_stateful_set_scale(self, namespace: str, name: str, replicas: int) -> None: ...
    def list_claims(self, namespace: str, label_selector: str = "") -> tuple[str, ...]:
        """Names of the PersistentVolumeClaims (a StatefulSet's claims outlive it)."""
        ...

    def default_storage_class(self) -> str | None:
        """The cluster's default StorageClass, None when there is none."""
        ...

    # pods
    def list_pods(self, namespace: str, label_selector: str = "") -> Listing: ...
    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None: ...
    def evict_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None: ...
    def exec_in_container(
        self, namespace: str, pod: str, container: str, command: list[str], timeout: float
    ) -> ExecResult: ...

    # nodes
    def list_nodes(self) -> Listing: ...
    def set_node_unschedulable(self, name: str, unschedulable: bool) -> None: ...

    # endpoints and events
    def list_endpoint_slices(self, namespace: str, label_selector: str = "") -> Listing: ...
    def list_events(self, namespace: str, field_selector: str = "") -> Listing: ...

    # autoscalers
    def list_autoscalers(self, namespace: str) -> Listing:
        """The namespace's HorizontalPodAutoscalers (autoscaling/v2) as AutoscalerRecords."""
        ...

    # watches
    def watch(
        self,
        kind: WatchKind,
        namespace: str | None,
        resource_version: str,
        *,
        label_selector: str = "",
        timeout_seconds: int = 60,
    ) -> WatchStream:
        """Events after `resource_version`; raises WatchExpired (from the call or while
        iterating) when the server no longer has that version (410 Gone)."""
        ...

    def close(self) -> None: ...
