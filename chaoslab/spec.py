"""The experiment model: what a person may write in an experiment file, typed and checked.

Every field has the Kubernetes name and default where Kubernetes has one, so an experiment
reads the same to someone who knows Deployments and probes. Durations are seconds
(floats) once parsed; percentages are fractions in [0, 1]. The YAML loader that reports
every problem with its line lives in `chaoslab.specload`; this module is the model only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from chaoslab.units import (
    DURATION_PATTERN,
    MAX_DURATION_SECONDS,
    PERCENT_PATTERN,
    parse_duration,
    parse_percent,
)

_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION_SECONDS},
        {"type": "string", "pattern": DURATION_PATTERN},
    ],
    "description": "a duration: 250ms, 30s, 5m, 1h, 1m30s, or a number of seconds",
}
_PERCENT_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "string", "pattern": PERCENT_PATTERN},
    ],
    "description": "a percentage: 99% or 0.99",
}

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda v: v, return_type=float),
    WithJsonSchema(_DURATION_SCHEMA),
]
"""Seconds, parsed from `250ms`, `30s`, `5m`, `1h` or a number."""

Percent = Annotated[
    float,
    BeforeValidator(parse_percent),
    WithJsonSchema(_PERCENT_SCHEMA),
]
"""A fraction in [0, 1], parsed from `99%` or `0.99`."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class Model(BaseModel):
    """Base of every spec model: immutable, camelCase keys, unknown keys rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=False,
    )


# --- cluster -------------------------------------------------------------------------


class SimTimings(Model):
    """Every delay of the simulated cluster. Defaults are upstream Kubernetes defaults
    (see docs/architecture.md and shared k8s-timings) unless noted as a sim choice."""

    # kubelet renews its node Lease every 10 s (nodeLeaseDurationSeconds / renew interval).
    node_heartbeat_period: Duration = 10.0
    # kube-controller-manager --node-monitor-period default: 5 s.
    node_monitor_period: Duration = 5.0
    # --node-monitor-grace-period default: 50 s since v1.32 (40 s before).
    node_monitor_grace_period: Duration = 50.0
    # Sim choice: image already present, container create + start ~0.5 s on a real node.
    pod_start_delay: Duration = 0.5
    # Sim choice: the scheduler binds within tens of milliseconds on an idle cluster.
    scheduler_delay: Duration = 0.02
    # Sim choice: the ReplicaSet controller reacts to watch events at once (event driven).
    controller_sync_delay: Duration = 0.02
    # Endpoint propagation has no fixed default upstream ("measure it"): sim choice 50 ms.
    endpoint_propagation_delay: Duration = 0.05
    # kubelet CrashLoopBackOff: 10 s initial, doubling, capped at 5 min, reset after 10 min.
    back_off_initial: Duration = 10.0
    back_off_max: Duration = 300.0
    back_off_reset: Duration = 600.0
    # kube-controller-manager --node-eviction-rate: 0.1 nodes/s, i.e. the NoExecute
    # unreachable taint reaches at most one more node every 10 s (token bucket, burst 1).
    node_eviction_rate: float = Field(default=0.1, ge=0)
    # kubectl drain retries an eviction refused by a PodDisruptionBudget every 5 s.
    drain_retry_interval: Duration = 5.0
    # The kubelet's PLEG relists containers every 1 s (genericPlegRelistPeriod; Evented
    # PLEG is off by default): a dead container is noticed up to 1 s after it died.
    pleg_relist_period: Duration = 1.0
    # --- HorizontalPodAutoscaler (kube-controller-manager flags) and metrics-server ---
    # --horizontal-pod-autoscaler-sync-period default: 15 s between two HPA evaluations.
    hpa_sync_period: Duration = 15.0
    # --horizontal-pod-autoscaler-tolerance default: 0.1 (no change within 10 % of target).
    hpa_tolerance: float = Field(default=0.1, ge=0, lt=1)
    # --horizontal-pod-autoscaler-downscale-stabilization default: 5 m, the scale-down
    # stabilization window when behavior.scaleDown.stabilizationWindowSeconds is unset.
    hpa_downscale_stabilization: Duration = 300.0
    # --horizontal-pod-autoscaler-cpu-initialization-period default: 5 m after pod start.
    hpa_cpu_initialization_period: Duration = 300.0
    # --horizontal-pod-autoscaler-initial-readiness-delay default: 30 s after pod start.
    hpa_initial_readiness_delay: Duration = 30.0
    # metrics-server --metric-resolution default: 15 s between two CPU scrapes; the CPU
    # rate it serves is over the window between the last two scrapes.
    metrics_resolution: Duration = 15.0


class SimClusterSpec(Model):
    """The embedded simulated cluster."""

    nodes: int = Field(default=3, ge=1, le=20)
    timings: SimTimings = SimTimings()
    # How the Service routes, named after kube-proxy's --proxy-mode: `nftables` is the
    # kernel (pod IPs and kube-proxy's nftables rules in a private network namespace,
    # sim/kernelservice.py), `userspace` the proxy process on 127.0.0.1 (sim/proxy.py),
    # `auto` the kernel where this machine allows it (user namespaces, ip and nft).
    proxy_mode: Literal["auto", "nftables", "userspace"] = "auto"


class NodeProviderSpec(Model):
    """How node faults reach a real cluster's machines (kubernetes backend only)."""

    type: Literal["docker", "command", "none"] = "none"
    crash: str | None = None
    hang: str | None = None
    restore: str | None = None
    # command: optional shell command printing running | paused | stopped for {node}.
    status: str | None = None
    # command: bound on each shell command (a cloud CLI may take a minute to stop a VM).
    timeout: Duration = 120.0
    # docker: the node's container name, {node} is the node name (kind and minikube
    # name node containers like their nodes).
    container: str = Field(default="{node}", min_length=1)
    # docker: the daemon to talk to (else $DOCKER_HOST, else the default socket).
    docker_host: str | None = None


class KubernetesClusterSpec(Model):
    """A real cluster reached through kubeconfig (or in-cluster config)."""

    context: str | None = None
    kubeconfig: str | None = None
    namespace: str | None = None
    allow_contexts: list[str] = []
    # A run may touch at most this share of the workload's pods and of the cluster's nodes.
    max_blast_radius: Percent = 0.5
    target: Literal["service"] | str = "service"
    python_image: str = "python:3.12-slim"
    node_provider: NodeProviderSpec = NodeProviderSpec()


class ClusterSpec(Model):
    backend: Literal["sim", "kubernetes"] = "sim"
    sim: SimClusterSpec = SimClusterSpec()
    kubernetes: KubernetesClusterSpec = KubernetesClusterSpec()


# --- workload ------------------------------------------------------------------------


class HttpGetAction(Model):
    path: str = "/"
    port: int | None = Field(default=None, ge=1, le=65535)


class ProbeSpec(Model):
    """A Kubernetes probe; field names and defaults as in the Pod API."""

    http_get: HttpGetAction = HttpGetAction()
    initial_delay_seconds: int = Field(default=0, ge=0)
    period_seconds: int = Field(default=10, ge=1)
    timeout_seconds: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    failure_threshold: int = Field(default=3, ge=1)


class AppKnobs(Model):
    """Knobs of the built-in app (image chaoslab/echo), the same on sim and a real cluster."""

    latency_ms: float = Field(default=0.0, ge=0, le=60_000)
    latency_jitter_ms: float = Field(default=0.0, ge=0, le=60_000)
    cpu_ms: float = Field(default=0.0, ge=0, le=10_000)
    startup_seconds: float = Field(default=0.0, ge=0, le=3600)
    readiness_delay_seconds: float = Field(default=0.0, ge=0, le=3600)
    error_rate: Percent = 0.0
    # chaoslab/kv only: start-up cost of replaying the write log, per logged write, so a
    # pod's start grows with its data as a database's recovery does.
    replay_ms_per_write: float = Field(default=0.0, ge=0, le=1000)


class EnvVar(Model):
    name: str = Field(min_length=1)
    value: str = ""


class ResourceList(Model):
    cpu: str | None = None
    memory: str | None = None


class ResourcesSpec(Model):
    requests: ResourceList = ResourceList()
    limits: ResourceList = ResourceList()


class PodDisruptionBudgetSpec(Model):
    """Exactly one of minAvailable / maxUnavailable: a count or a percentage string."""

    min_available: int | str | None = None
    max_unavailable: int | str | None = None

    @field_validator("min_available", "max_unavailable")
    @classmethod
    def _int_or_percent(cls, value: int | str | None) -> int | str | None:
        # The PodDisruptionBudget API takes an IntOrString: a count or an integer percentage.
        if isinstance(value, int) and value < 0:
            raise ValueError(f"expected a count of at least 0 or a percentage like 50%, got {value}")
        if isinstance(value, str) and not re.fullmatch(r"(100|[1-9]?[0-9])%", value):
            raise ValueError(f"expected a count or a percentage like 50%, got {value!r}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> PodDisruptionBudgetSpec:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("set exactly one of minAvailable or maxUnavailable")
        return self


# --- autoscaling (autoscaling/v2 HorizontalPodAutoscaler) ----------------------------


class ScalingPolicy(Model):
    """One HPAScalingPolicy: change by `value` pods or `value` percent per `periodSeconds`."""

    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0)
    period_seconds: int = Field(gt=0, le=1800)


class ScalingRules(Model):
    """HPAScalingRules; unset fields take the autoscaling/v2 defaults of their direction."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] | None = None


# autoscaling/v2 defaults (pkg/apis/autoscaling/v2/defaults.go): scale up by the larger
# of 4 pods or 100 % per 15 s, no stabilization; scale down by up to 100 % per 15 s, with
# the controller's --horizontal-pod-autoscaler-downscale-stabilization window (5 m).
DEFAULT_SCALE_UP_POLICIES = (
    ScalingPolicy(type="Pods", value=4, period_seconds=15),
    ScalingPolicy(type="Percent", value=100, period_seconds=15),
)
DEFAULT_SCALE_DOWN_POLICIES = (ScalingPolicy(type="Percent", value=100, period_seconds=15),)
DEFAULT_SCALE_UP_STABILIZATION_SECONDS = 0


class AutoscalingBehavior(Model):
    scale_up: ScalingRules = ScalingRules()
    scale_down: ScalingRules = ScalingRules()


class MetricTarget(Model):
    type: Literal["Utilization"] = "Utilization"
    # autoscaling/v2: with no metrics at all, the default is 80 % average CPU utilization.
    average_utilization: int = Field(default=80, ge=1, le=1000)


class ResourceMetricSource(Model):
    name: Literal["cpu"] = "cpu"
    target: MetricTarget = MetricTarget()


class MetricSpec(Model):
    """One entry of the HPA's `metrics` list; only CPU utilisation is supported so far."""

    type: Literal["Resource"] = "Resource"
    resource: ResourceMetricSource = ResourceMetricSource()


class AutoscalingSpec(Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) on the workload, field names as there.

    CPU utilisation is relative to `workload.resources.requests.cpu`, which is then
    required. `workload.replicas` is the count the Deployment starts with.
    """

    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(ge=1, le=100)
    metrics: list[MetricSpec] = [MetricSpec()]
    behavior: AutoscalingBehavior = AutoscalingBehavior()

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) must not be above maxReplicas ({self.max_replicas})")
        if len(self.metrics) != 1:
            raise ValueError("expected exactly one metric (CPU utilisation); more metrics are not supported yet")
        return self

    @property
    def target_utilization(self) -> int:
        """The CPU target, percent of the request (averageUtilization)."""
        return self.metrics[0].resource.target.average_utilization


# A resource.Quantity as a PersistentVolumeClaim's storage request takes it: 1Gi, 500Mi, 10G.
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
VOLUME_CLAIM = "volumeClaimTemplate"
VOLUME_EMPTY_DIR = "emptyDir"


class VolumeSpec(Model):
    """The pod's one data volume, mounted at `mountPath`.

    volumeClaimTemplate (StatefulSet only): one PersistentVolumeClaim per ordinal,
    `<volume name>-<workload>-<ordinal>`, kept across pod deletions and node failures.
    emptyDir: scratch space that lives exactly as long as its pod (container restarts
    keep it, a deleted or evicted pod loses it): the contrast that shows what a claim buys.
    """

    type: Literal["volumeClaimTemplate", "emptyDir"] = VOLUME_CLAIM
    name: str = Field(default="data", pattern=_DNS_LABEL.pattern, max_length=63)
    mount_path: str = Field(default="/data", pattern=r"^/")
    # The claim's storage request (PVC spec.resources.requests.storage).
    size: str = Field(default="1Gi", pattern=_QUANTITY)
    # None: the cluster's default StorageClass (the PVC leaves storageClassName unset).
    storage_class_name: str | None = Field(default=None, min_length=1)


class WorkloadSpec(Model):
    """A Deployment (or a StatefulSet) behind a Service."""

    name: str = Field(default="web", pattern=_DNS_LABEL.pattern, max_length=63)
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    # StatefulSet only; None: the API default, OrderedReady.
    pod_management_policy: Literal["OrderedReady", "Parallel"] | None = None
    volume: VolumeSpec | None = None
    image: str = "chaoslab/echo"
    replicas: int = Field(default=1, ge=0, le=100)
    port: int = Field(default=8080, ge=1, le=65535)
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] = []
    resources: ResourcesSpec | None = None
    readiness_probe: ProbeSpec | None = None
    liveness_probe: ProbeSpec | None = None
    # DefaultTolerationSeconds admission plugin: 300 s for not-ready and unreachable.
    toleration_seconds: int | None = Field(default=300, ge=0)
    # Pod API default terminationGracePeriodSeconds: 30 s.
    termination_grace_period_seconds: int = Field(default=30, ge=0)
    app: AppKnobs = AppKnobs()
    pod_disruption_budget: PodDisruptionBudgetSpec | None = None
    manifests: list[str] | None = None
    autoscaling: AutoscalingSpec | None = None

    @property
    def stateful(self) -> bool:
        return self.kind == "StatefulSet"

    def effective_pod_management_policy(self) -> str:
        return self.pod_management_policy or "OrderedReady"

    def ordinal_names(self, replicas: int | None = None) -> list[str]:
        """A StatefulSet's stable pod names, `<name>-0 .. <name>-(N-1)`."""
        count = self.replicas if replicas is None else replicas
        return [f"{self.name}-{ordinal}" for ordinal in range(count)]


# --- load ----------------------------------------------------------------------------


class WaitTimeSpec(Model):
    min: Duration = 0.05
    max: Duration = 0.1

    @model_validator(mode="after")
    def _ordered(self) -> WaitTimeSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}s) must not be above max ({self.max:g}s)")
        return self


class RequestSpec(Model):
    path: str = Field(default="/", pattern=r"^/")
    weight: int = Field(default=1, ge=1, le=1000)
    method: Literal["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"] = "GET"
    name: str | None = None


class LoadStage(Model):
    """One step of `load.stages`: go to `users` at `spawnRate` users/s, hold for `duration`.

    Stages follow each other from the start of the measurement (the warmup runs at
    `load.users`); after the last one its users stay until the load stops.
    """

    duration: Duration
    users: int = Field(ge=0, le=10_000)
    spawn_rate: float | None = Field(default=None, gt=0, le=10_000)

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"expected a duration above 0s, got {value:g}s")
        return value


class DataIntegritySpec(Model):
    """Built-in users that write unique keys to one StatefulSet ordinal (image chaoslab/kv)
    through its stable address, record every acknowledgement, and read acknowledged keys
    back, as a database client talks to its primary."""

    ordinal: int = Field(default=0, ge=0, le=99)
    # Relative weights of a write (a new unique key) and a read-back of an acknowledged one.
    write_weight: int = Field(default=1, ge=1, le=1000)
    read_weight: int = Field(default=3, ge=0, le=1000)


class LoadSpec(Model):
    users: int = Field(default=10, ge=1, le=10_000)
    spawn_rate: float = Field(default=10.0, gt=0, le=10_000)
    wait_time: WaitTimeSpec = WaitTimeSpec()
    timeout: Duration = 2.0
    requests: list[RequestSpec] | None = None
    locustfile: str | None = Field(default=None, min_length=1)
    processes: int = Field(default=1, ge=1, le=64)
    # Load that changes over time (None: `users` throughout). spawnRate defaults to load.spawnRate.
    stages: list[LoadStage] | None = None
    data_integrity: DataIntegritySpec | None = None

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"expected a timeout above 0s, got {value:g}s")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> LoadSpec:
        if self.requests is not None and self.locustfile is not None:
            raise ValueError("set either requests or locustfile, not both")
        if self.requests is not None and not self.requests:
            raise ValueError("requests must list at least one request")
        if self.stages is not None and not self.stages:
            raise ValueError("stages must list at least one stage")
        if self.data_integrity is not None and (self.requests is not None or self.locustfile is not None):
            raise ValueError("set one of requests, locustfile or dataIntegrity")
        return self

    def effective_requests(self) -> list[RequestSpec]:
        """The requests to send when no locustfile is given (default: GET /)."""
        return list(self.requests) if self.requests else [RequestSpec()]


# --- timeline and faults -------------------------------------------------------------


class TimelineSpec(Model):
    warmup: Duration = 5.0
    duration: Duration = 30.0
    cooldown: Duration = 2.0
    ready_timeout: Duration = 120.0

    @field_validator("duration", "ready_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"expected a duration above 0s, got {value:g}s")
        return value


class TargetSpec(Model):
    """Which objects a fault hits: a count, a percentage, or one named object."""

    count: int | None = Field(default=None, ge=1)
    percent: Percent | None = None
    name: str | None = Field(default=None, min_length=1)

    @field_validator("percent")
    @classmethod
    def _above_zero(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("expected a percentage above 0% (a fault must hit something)")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        given = [k for k in ("count", "percent", "name") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of count, percent or name")
        return self


class _FaultBase(Model):
    at: Duration
    every: Duration | None = None
    # How many times a fault with `every` fires; None: until the measurement ends.
    repeat: int | None = Field(default=None, ge=1)
    target: TargetSpec = TargetSpec(count=1)

    @field_validator("every")
    @classmethod
    def _positive_interval(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError(f"expected an interval above 0s, got {value:g}s")
        return value


class PodDeleteFault(_FaultBase):
    action: Literal["pod-delete"]
    # None: the pod's terminationGracePeriodSeconds, as `kubectl delete pod` does.
    grace_period_seconds: int | None = Field(default=None, ge=0)
    # kubectl delete --force --grace-period=0: the object goes at once, without waiting for
    # the kubelet. A count or percentage then picks among pods already Terminating (stuck on
    # a lost node, what force is for) when there are any.
    force: bool = False


class ContainerKillFault(_FaultBase):
    """Signal the container's main process. SIGKILL/SIGTERM: it dies and the kubelet
    restarts it in place. SIGSTOP: it freezes but stays alive with its port open, as a
    deadlocked server does; only a readiness (or liveness) probe can notice."""

    action: Literal["container-kill"]
    signal: Literal["SIGKILL", "SIGTERM", "SIGSTOP"] = "SIGKILL"


class NodeCrashFault(_FaultBase):
    action: Literal["node-crash"]
    # Bring the node back after this long; None: at teardown.
    restore_after: Duration | None = None


class NodeHangFault(_FaultBase):
    action: Literal["node-hang"]
    restore_after: Duration | None = None


class NodeRestoreFault(_FaultBase):
    action: Literal["node-restore"]


class NodeDrainFault(_FaultBase):
    action: Literal["node-drain"]
    grace_period_seconds: int | None = Field(default=None, ge=0)
    timeout: Duration = 120.0
    # Uncordon after this long; None: at teardown.
    restore_after: Duration | None = None


class ScaleFault(_FaultBase):
    action: Literal["scale"]
    replicas: int = Field(ge=0, le=100)


FaultSpec = Annotated[
    Union[
        PodDeleteFault,
        ContainerKillFault,
        NodeCrashFault,
        NodeHangFault,
        NodeRestoreFault,
        NodeDrainFault,
        ScaleFault,
    ],
    Field(discriminator="action"),
]

FAULT_ACTIONS = (
    "pod-delete",
    "container-kill",
    "node-crash",
    "node-hang",
    "node-restore",
    "node-drain",
    "scale",
)
NODE_ACTIONS = frozenset({"node-crash", "node-hang", "node-restore", "node-drain"})
POD_ACTIONS = frozenset({"pod-delete", "container-kill"})


# --- measurement ---------------------------------------------------------------------


class SloSpec(Model):
    availability: Percent = 0.99
    window: Duration = 3.0


class AvailabilityProbeSpec(Model):
    """An independent fixed-rate probe, apart from Locust."""

    interval: Duration = 0.1
    timeout: Duration = 1.0
    path: str = Field(default="/", pattern=r"^/")


class MeasureSpec(Model):
    bucket: Duration = 0.1
    slo: SloSpec = SloSpec()
    recovery_budget: Duration | None = None
    probe: AvailabilityProbeSpec | None = None
    # Most acknowledged writes a trial may lose (load.dataIntegrity); None: not judged.
    max_lost_writes: int | None = Field(default=None, ge=0)

    @field_validator("bucket")
    @classmethod
    def _bucket_range(cls, value: float) -> float:
        if not 0.01 <= value <= 60:
            raise ValueError(f"expected a bucket between 10ms and 60s, got {value:g}s")
        return value


# --- the experiment ------------------------------------------------------------------


class Experiment(Model):
    """One experiment file."""

    name: str = Field(pattern=_DNS_LABEL.pattern, max_length=63)
    description: str = ""
    cluster: ClusterSpec = ClusterSpec()
    workload: WorkloadSpec = WorkloadSpec()
    load: LoadSpec = LoadSpec()
    timeline: TimelineSpec = TimelineSpec()
    faults: list[FaultSpec] = []
    measure: MeasureSpec = MeasureSpec()
    sweep: dict[str, list[Any]] = {}
    trials: int = Field(default=1, ge=1, le=100)
    seed: int = 0

    def with_overrides(self, overrides: dict[str, Any]) -> Experiment:
        """A copy with dotted-path overrides applied and re-validated (raises ValueError)."""
        data = self.model_dump(by_alias=True, exclude_none=False)
        for path, value in overrides.items():
            set_dotted(data, path, value)
        return Experiment.model_validate(data)


def set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at a dotted path (`workload.replicas`, `faults.0.at`) in nested data.

    Path segments may be camelCase or snake_case; list items are addressed by index,
    as `faults.0.at` or `faults[0].at`. Raises KeyError naming the first segment that
    does not exist.
    """
    parts = re.sub(r"\[(\d+)\]", r".\1", path).split(".")
    node: Any = data
    created = False  # inside a section this call created (from null): any key is new
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(".".join(parts[: depth + 1]))
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part if part in node else to_camel(part)
            if key not in node and not created:
                raise KeyError(".".join(parts[: depth + 1]))
        else:
            raise KeyError(".".join(parts[: depth + 1]))
        if last:
            node[key] = value
        else:
            child = node.get(key) if isinstance(node, dict) else node[key]
            if child is None:
                node[key] = child = {}
                created = True
            node = child
