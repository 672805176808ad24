"""`KubernetesCluster`: the Cluster protocol on a real cluster, through `KubeApi`.

Why it exists: experiments written for sim must run unchanged on minikube, kind or a
cloud cluster, and must never hurt anything but what they created. This class turns the
engine's domain verbs (deploy, inject, restore, teardown) into the few API calls of
`KubeApi` plus node-provider actions, with the safety rules of `safety.py` checked
before any change: a namespace of its own per run, no system namespace, no
control-plane node, no context that is not obviously local without `yes`, a maximum
blast radius. Everything it changes is recorded so `teardown` (and `close`, when deploy
itself failed) can undo it and verify that it did, also after an error or Ctrl-C.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chaoslab.cluster.network import HOST_NETWORK, ClientNetwork
from chaoslab.cluster.base import AutoscalerSample, ClusterEvent, Deployment, EventKind, Injection, Node, Pod
from chaoslab.cluster.kube import manifests
from chaoslab.cluster.kube.records import (
    DeploymentRecord,
    EvictionBlocked,
    ExecUnsupported,
    KubeApi,
    NodeRecord,
    NotFound,
    PodRecord,
)
from chaoslab.cluster.kube.safety import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    check_blast_radius,
    check_context,
    check_namespace,
    check_not_control_plane,
    require_resource_metrics,
)
from chaoslab.cluster.kube.watches import (
    AutoscalerTracker,
    Causes,
    EndpointTracker,
    EventSink,
    EventTracker,
    NodeTracker,
    PodTracker,
    ResourceWatcher,
    SampleSink,
    Tracker,
)
from chaoslab.cluster.nodeproviders import NodeProvider, provider_from_spec
from chaoslab.errors import ChaoslabError, ClusterError, UsageError
from chaoslab.plan import percent_of
from chaoslab.spec import (
    ContainerKillFault,
    FaultSpec,
    KubernetesClusterSpec,
    NodeCrashFault,
    NodeDrainFault,
    NodeHangFault,
    NodeRestoreFault,
    PodDeleteFault,
    ScaleFault,
    TargetSpec,
    WorkloadSpec,
)

# The built-in app's source: the very file the simulator runs as a pod.
APP_SOURCE_PATH = Path(__file__).resolve().parent.parent / "sim" / "app.py"
KV_SOURCE_PATH = APP_SOURCE_PATH.with_name("kv.py")
# Exit status of the container-kill script when PID 1 of the container is its only
# process: the kernel drops SIGKILL and SIGSTOP sent to a PID namespace's init from inside it.
_INIT_UNKILLABLE_EXIT = 97

# Sends the signal ($1) to the container's main process. With a shared PID namespace
# (the built-in app) PID 1 is the pause container, and the main process is the oldest
# one whose parent is outside the namespace (PPid 0), other than this shell.
CONTAINER_KILL_SCRIPT = r"""
sig="$1"; target=1
if grep -q pause /proc/1/cmdline 2>/dev/null; then
  target=""
  for d in /proc/[0-9]*; do
    p="${d#/proc/}"
    [ "$p" = 1 ] && continue
    [ "$p" = "$$" ] && continue
    ppid=""
    while read -r key value; do
      if [ "$key" = "PPid:" ]; then ppid="$value"; break; fi
    done < "$d/status" 2>/dev/null
    [ "$ppid" = 0 ] || continue
    if [ -z "$target" ] || [ "$p" -lt "$target" ]; then target="$p"; fi
  done
  [ -n "$target" ] || { echo "no main process found" >&2; exit 1; }
fi
if [ "$target" = 1 ] && { [ "$sig" = KILL ] || [ "$sig" = STOP ]; }; then
  echo "PID 1 is the container's init: SIG$sig from inside its PID namespace is ignored" >&2
  exit 97
fi
kill -s "$sig" "$target" && echo "$target"
"""


@dataclass(frozen=True)
class KubeTimeouts:
    """Bounds on the backend's waits, all in seconds."""

    # Length of one watch session (server-side timeoutSeconds); it is then resumed.
    watch_seconds: int = 60
    # A watch that keeps failing this long fails the trial (its events would be missing).
    watch_failure_seconds: float = 30.0
    # Polling interval of wait_ready, drains and teardown checks.
    poll_seconds: float = 1.0
    # kubectl drain retries an eviction refused by a PodDisruptionBudget every 5 s.
    drain_retry_seconds: float = 5.0
    exec_seconds: float = 30.0
    # Namespace deletion runs finalizers and waits for pods' grace periods (30 s default).
    namespace_delete_seconds: float = 120.0
    # A node brought back (docker start of a kind node) needs tens of seconds to be Ready.
    node_ready_seconds: float = 180.0
    # Bound on joining a background thread at close.
    thread_join_seconds: float = 5.0


@dataclass
class _NodeFault:
    """What chaoslab did to one node, so it can be undone exactly."""

    fault_id: str
    action: str
    machine: str | None = None  # "crash" | "hang": the provider must restore it
    cordoned: bool = False  # we set spec.unschedulable (it was schedulable before)
    drain: _Drain | None = None


@dataclass
class _Drain:
    """A node-drain still evicting pods that a PodDisruptionBudget protects."""

    node: str
    deadline: float
    grace_period_seconds: int | None
    evicted: list[str] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    error: ClusterError | None = None


def _default_suffix() -> str:
    return secrets.token_hex(3)


class KubernetesCluster:
    """The Cluster protocol over `KubeApi` (see chaoslab/cluster/base.py).

    spec: the experiment's `cluster.kubernetes`. api: a connected `KubeApi`
    (`chaoslab.cluster.kube.client.connect`, or a fake in tests). yes: allow a context
    that is not obviously local. node_provider: overrides the one the spec describes.
    base_dir: where `workload.manifests` paths are relative to (the experiment's folder).
    name_suffix: the random part of the per-run namespace name.
    """

    def __init__(
        self,
        spec: KubernetesClusterSpec,
        api: KubeApi,
        *,
        yes: bool = False,
        node_provider: NodeProvider | None = None,
        base_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        name_suffix: Callable[[], str] = _default_suffix,
        app_source: str | None = None,
        timeouts: KubeTimeouts = KubeTimeouts(),
    ) -> None:
        check_context(api.connection, spec.allow_contexts, yes)
        if spec.namespace is not None:
            check_namespace(spec.namespace)
        if spec.target != "service" and not spec.target.startswith(("http://", "https://")):
            raise UsageError(
                f"cluster.kubernetes.target: expected service or a URL like http://192.168.49.2:30080, "
                f"got {spec.target!r}"
            )
        self.spec = spec
        self.api = api
        self.provider = node_provider or provider_from_spec(spec.node_provider)
        self.base_dir = base_dir or Path.cwd()
        self.clock = clock
        self.timeouts = timeouts
        self._name_suffix = name_suffix
        self._app_source = app_source
        self._lock = threading.RLock()
        self._sink = EventSink()
        self._samples = SampleSink()
        self._causes = Causes()
        self._watchers: list[ResourceWatcher] = []
        self._timers: list[threading.Timer] = []
        self._node_faults: dict[str, _NodeFault] = {}
        self._touched_nodes: set[str] = set()
        self._background_errors: list[ClusterError] = []
        self.namespace: str | None = None
        self.namespace_created = False
        self._namespace_gone = False
        self.objects: manifests.WorkloadObjects | None = None
        self._created: list[tuple[str, str]] = []
        self._desired = 0
        self._torn_down = False
        self._closed = False

    # --- deploy ---------------------------------------------------------------------

    def deploy(self, workload: WorkloadSpec) -> Deployment:
        if self.objects is not None:
            raise ClusterError("deploy was already called on this cluster connection")
        # Objects first: a mistake in the user's manifests must not leave a namespace behind.
        namespace = self.spec.namespace or self._fresh_namespace_name(workload)
        objects = manifests.with_autoscaler(self._workload_objects(workload, namespace), workload)
        if workload.autoscaling is not None:
            require_resource_metrics(self.api)  # before anything exists: nothing to undo
        if objects.claims and workload.volume is not None and workload.volume.storage_class_name is None:
            if self.api.default_storage_class() is None:
                raise UsageError(
                    f"workload.volume: the claims {', '.join(objects.claims)} name no StorageClass and the "
                    "cluster has no default one, so they would stay Pending; set "
                    "workload.volume.storageClassName, or mark a class default"
                )
        self._prepare_namespace(namespace)
        self.objects = objects
        self._desired = objects.replicas
        self._start_watchers(namespace, objects, workload)
        for body in objects.objects:
            self.api.create_object(namespace, body)
            with self._lock:
                self._created.append((str(body["kind"]), str(body["metadata"]["name"])))
        return Deployment(name=objects.deployment, namespace=namespace, replicas=objects.replicas)

    def _fresh_namespace_name(self, workload: WorkloadSpec) -> str:
        # A DNS label: at most 63 characters, the random suffix kept whole.
        suffix = self._name_suffix()
        return f"chaoslab-{workload.name}"[: 62 - len(suffix)].rstrip("-") + f"-{suffix}"

    def _prepare_namespace(self, name: str) -> None:
        """Use the named namespace if it exists; else create it (and own it)."""
        if self.spec.namespace is not None:
            try:
                existing = self.api.read_namespace(name)
            except NotFound:
                existing = None
            if existing is not None:
                if existing.phase == "Terminating":
                    raise ClusterError(
                        f"namespace {name} is still being deleted (a previous run?); wait for "
                        f"`kubectl get namespace {name}` to report NotFound, or name another one"
                    )
                self.namespace = name
                return
        labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, "app.kubernetes.io/part-of": "chaoslab"}
        self.api.create_namespace(name, labels)
        self.namespace = name
        self.namespace_created = True

    def _workload_objects(self, workload: WorkloadSpec, namespace: str) -> manifests.WorkloadObjects:
        if workload.manifests:
            documents = manifests.load_manifest_documents(workload.manifests, self.base_dir)
            return manifests.manifest_objects(workload, documents, namespace)
        source = self._app_source
        kv = workload.image == manifests.KV_IMAGE
        if source is None and (workload.image == manifests.BUILT_IN_IMAGE or kv):
            source = _read_app(APP_SOURCE_PATH)
        return manifests.generated_objects(
            workload,
            python_image=self.spec.python_image,
            app_source=source or "",
            kv_source=_read_app(KV_SOURCE_PATH) if kv else "",
        )

    def _start_watchers(self, namespace: str, objects: manifests.WorkloadObjects, workload: WorkloadSpec) -> None:
        """Baseline lists first (synchronously), then the watch threads: every change
        after this point, including the creation of the workload, becomes an event (and
        with autoscaling, every evaluation of its HPA a sample)."""
        port = objects.port
        specs: list[tuple[str, str | None, str, Tracker]] = [
            ("nodes", None, "", NodeTracker(self._causes)),
            ("pods", namespace, objects.label_selector, PodTracker(self._causes)),
            (
                "endpointslices",
                namespace,
                f"kubernetes.io/service-name={objects.service}",
                EndpointTracker(lambda: port),
            ),
            ("events", namespace, "", EventTracker(self._causes)),
        ]
        if workload.autoscaling is not None:
            # Only then: a run without an HPA needs no permission to list or watch HPAs.
            tracker = AutoscalerTracker(objects.deployment, workload.autoscaling.target_utilization, self._samples)
            specs.append(("horizontalpodautoscalers", namespace, "", tracker))
        for kind, watch_namespace, selector, tracker in specs:
            watcher = ResourceWatcher(
                self.api,
                kind,  # type: ignore[arg-type]
                watch_namespace,
                tracker,
                self._sink,
                label_selector=selector,
                timeout_seconds=self.timeouts.watch_seconds,
                clock=self.clock,
            )
            watcher.relist()
            self._watchers.append(watcher)
        for watcher in self._watchers:
            watcher.start()

    # --- readiness and target -------------------------------------------------------

    def wait_ready(self, deployment: Deployment, timeout: float) -> None:
        """Until the rollout is complete and the Service has every replica as endpoint."""
        deadline = time.monotonic() + timeout
        while True:
            record = self._read_workload(deployment)
            progress = next((c for c in record.conditions if c.type == "Progressing"), None)
            if progress is not None and progress.status == "False" and progress.reason == "ProgressDeadlineExceeded":
                raise ClusterError(self._not_ready_text(deployment, record.ready_replicas, record.replicas, "its progress deadline passed"))
            rolled_out = (
                record.observed_generation >= record.generation
                and record.updated_replicas == record.replicas
                and record.ready_replicas == record.replicas
                and record.available_replicas == record.replicas
            )
            if rolled_out and self.ready_endpoints() >= record.replicas:
                return
            if time.monotonic() >= deadline:
                raise ClusterError(
                    self._not_ready_text(deployment, record.ready_replicas, record.replicas, f"within {timeout:g}s")
                )
            self._check_watchers()
            time.sleep(self.timeouts.poll_seconds)

    def _read_workload(self, deployment: Deployment) -> DeploymentRecord:
        if self._require_objects().kind == "StatefulSet":
            return self.api.read_stateful_set(deployment.namespace, deployment.name)
        return self.api.read_deployment(deployment.namespace, deployment.name)

    def _not_ready_text(self, deployment: Deployment, ready: int, replicas: int, why: str) -> str:
        kind = self.objects.kind if self.objects is not None else "Deployment"
        lines = [
            f"{kind} {deployment.name} in namespace {deployment.namespace} did not become ready "
            f"{why} ({ready}/{replicas} ready); pods that are not ready:"
        ]
        for pod in self._live_pods(include_terminating=True):
            if pod.ready:
                continue
            lines.append("  " + self._pod_diagnosis(pod))
        if len(lines) == 1:
            owner = "its ReplicaSet" if kind == "Deployment" else "its"
            lines.append(f"  (no pods were created: look at `kubectl describe {kind.lower()}` and {owner} events)")
        lines.append(
            "raise timeline.readyTimeout if the image is still being pulled; "
            f"see `kubectl -n {deployment.namespace} describe pods`"
        )
        return "\n".join(lines)

    def _pod_diagnosis(self, pod: PodRecord) -> str:
        parts = [f"pod {pod.name} ({pod.phase}, node {pod.node or 'none'})"]
        for condition in pod.conditions:
            if condition.status != "True" and (condition.reason or condition.message):
                parts.append(f"{condition.type}={condition.status} {condition.reason}: {condition.message}".rstrip(": "))
        for status in pod.containers:
            if status.state in ("waiting", "terminated") and (status.reason or status.message):
                parts.append(f"container {status.name} {status.state} {status.reason}: {status.message}".rstrip(": "))
        try:
            events = self.api.list_events(pod.namespace, f"involvedObject.name={pod.name}").items
        except ClusterError as exc:
            parts.append(f"(events unavailable: {exc})")
            events = ()
        recent = sorted(events, key=lambda e: e.ts or 0.0)[-5:]
        for event in recent:
            parts.append(f"event {event.type} {event.reason}: {event.message}")
        return "; ".join(parts)

    def ordinal_url(self, deployment: Deployment, ordinal: int) -> str:
        """The URL of one StatefulSet pod from outside the cluster: its per-ordinal NodePort
        Service (selecting statefulset.kubernetes.io/pod-name), found as `service_url` finds
        the workload's."""
        objects = self._require_objects()
        if ordinal >= len(objects.ordinal_services):
            raise ClusterError(
                f"{deployment.name} has no per-ordinal Service for ordinal {ordinal} "
                f"({objects.kind} with {len(objects.ordinal_services)} ordinal Service(s))"
            )
        return self._node_port_url(deployment, objects.ordinal_services[ordinal])

    def client_network(self) -> ClientNetwork:
        """A real cluster's URLs are reached from this machine, as they are."""
        return HOST_NETWORK

    def service_url(self, deployment: Deployment) -> str:
        """The URL the load generator uses (recorded in run.json by the engine).

        An explicit `target` URL as given; else a LoadBalancer's ingress; else the
        Service's NodePort on a node address, preferring control-plane nodes (never
        faulted, so the load's entry point survives node faults), then Ready workers.
        """
        if self.spec.target != "service":
            return self.spec.target.rstrip("/")
        return self._node_port_url(deployment, self._require_objects().service)

    def _node_port_url(self, deployment: Deployment, name: str) -> str:
        service = self.api.read_service(deployment.namespace, name)
        port = service.ports[0] if service.ports else None
        if port is None:
            raise ClusterError(f"Service {name} has no ports")
        if service.type == "LoadBalancer" and service.load_balancer_ingress:
            return f"http://{service.load_balancer_ingress[0]}:{port.port}"
        if port.node_port:
            nodes = sorted(self.api.list_nodes().items, key=lambda n: (not n.control_plane, n.ready != "True", n.name))
            for node in nodes:
                address = node.address("ExternalIP", "InternalIP")
                if address:
                    return f"http://{address}:{port.node_port}"
        raise ClusterError(
            f"Service {name} ({service.type}) has no address reachable from here; set "
            "cluster.kubernetes.target to a URL (e.g. from `minikube service --url` or "
            f"`kubectl -n {deployment.namespace} port-forward svc/{name} 8080:{port.port}`)"
        )

    # --- snapshots ------------------------------------------------------------------

    def _require_objects(self) -> manifests.WorkloadObjects:
        if self.objects is None or self.namespace is None:
            raise ClusterError("nothing is deployed on this cluster connection yet")
        return self.objects

    def _live_pods(self, *, include_terminating: bool = False) -> list[PodRecord]:
        objects = self._require_objects()
        assert self.namespace is not None
        pods = [p for p in self.api.list_pods(self.namespace, objects.label_selector).items]
        if not include_terminating:
            pods = [p for p in pods if not p.terminating and p.phase not in ("Succeeded", "Failed")]
        return sorted(pods, key=lambda p: p.name)

    def pods(self, deployment: Deployment) -> list[Pod]:
        objects = self._require_objects()
        result = []
        for pod in self._live_pods(include_terminating=True):
            result.append(
                Pod(
                    name=pod.name,
                    node=pod.node,
                    phase="Terminating" if pod.terminating else pod.phase,
                    ready=pod.ready,
                    restart_count=pod.restart_count,
                    endpoint=f"{pod.pod_ip}:{objects.port}" if pod.pod_ip else None,
                )
            )
        return result

    def nodes(self) -> list[Node]:
        return [
            Node(
                name=node.name,
                ready=node.ready,
                schedulable=not node.unschedulable,
                taints=tuple(t.text() for t in node.taints),
                control_plane=node.control_plane,
            )
            for node in sorted(self.api.list_nodes().items, key=lambda n: n.name)
        ]

    def ready_endpoints(self) -> int:
        """Ready endpoints of the Service right now (a fresh list, not the watch)."""
        objects = self._require_objects()
        assert self.namespace is not None
        slices = self.api.list_endpoint_slices(self.namespace, f"kubernetes.io/service-name={objects.service}").items
        ready = {e.pod or e.addresses[0] for s in slices for e in s.endpoints if e.ready and e.addresses}
        return len(ready)

    # --- faults ---------------------------------------------------------------------

    def check_faults(self, deployment: Deployment, faults: Sequence[FaultSpec]) -> None:
        """container-kill runs `kill` through /bin/sh in the container: an image without a
        shell is refused now, by one harmless exec into a running pod, and not when the
        fault fires in the middle of the measurement. The built-in app's image has one."""
        kills = [f for f in faults if isinstance(f, ContainerKillFault)]
        objects = self._require_objects()
        if not kills or objects.has_shell:
            return
        assert self.namespace is not None
        running = [p for p in self._live_pods() if p.phase == "Running"]
        if not running:
            return  # nothing to ask; the fault reports it when it fires
        try:
            self.api.exec_in_container(
                self.namespace, running[0].name, objects.container, ["/bin/sh", "-c", "exit 0"], self.timeouts.exec_seconds
            )
        except ExecUnsupported as exc:
            raise _no_shell(kills[0].action, objects.image, exc) from exc

    def inject(self, deployment: Deployment, fault: FaultSpec, fault_id: str, rng: random.Random) -> Injection:
        self._require_objects()
        ready_before = self.ready_endpoints()
        ts = self.clock()
        if isinstance(fault, PodDeleteFault):
            targets, detail, extra = self._pod_delete(fault, fault_id, rng)
        elif isinstance(fault, ContainerKillFault):
            targets, detail, extra = self._container_kill(fault, fault_id, rng)
        elif isinstance(fault, (NodeCrashFault, NodeHangFault)):
            targets, detail, extra = self._node_machine_fault(fault, fault_id, rng)
        elif isinstance(fault, NodeDrainFault):
            targets, detail, extra = self._node_drain(fault, fault_id, rng)
        elif isinstance(fault, NodeRestoreFault):
            targets, detail, extra = self._node_restore(fault, fault_id, rng)
        elif isinstance(fault, ScaleFault):
            targets, detail, extra = self._scale(deployment, fault)
        else:  # pragma: no cover - the spec's discriminated union is closed
            raise UsageError(f"{fault_id}: unknown action {fault.action!r}")
        injection = Injection(
            fault_id=fault_id,
            action=fault.action,
            ts=ts,
            targets=tuple(targets),
            detail=detail,
            restorable=fault.action in ("node-crash", "node-hang", "node-drain"),
            ready_before=ready_before,
            ready_after=self.ready_endpoints(),
            extra=extra,
        )
        self._sink.put(
            ClusterEvent(
                ts=ts,
                kind=EventKind.FAULT_INJECTED,
                object="fault",
                name=fault_id,
                reason=fault.action,
                detail=f"targets={';'.join(targets)} {detail}".strip() + ("" if targets else " skipped=no eligible target"),
            )
        )
        restore_after = getattr(fault, "restore_after", None)
        if restore_after is not None and injection.restorable:
            timer = threading.Timer(restore_after, self._auto_restore, args=(injection,))
            timer.daemon = True
            timer.name = f"chaoslab-restore-{fault_id}"
            with self._lock:
                self._timers.append(timer)
            timer.start()
        return injection

    def _choose(
        self, target: TargetSpec, candidates: Sequence[str], total: int, rng: random.Random, what: str, fault_id: str, action: str
    ) -> list[str]:
        if target.name is not None:
            if target.name not in candidates:
                raise UsageError(
                    f"{fault_id} {action}: target {target.name!r} is not one of the {what} it may hit "
                    f"now ({', '.join(candidates) or 'none'})"
                )
            return [target.name]
        if target.count is not None:
            wanted = target.count
        else:
            assert target.percent is not None
            wanted = percent_of(target.percent, total)
        if not candidates:
            return []  # skipped, as on sim: the injection says "no eligible target"
        return sorted(rng.sample(sorted(candidates), min(wanted, len(candidates))))

    def _pod_total(self, live: Sequence[PodRecord]) -> int:
        return max(self._desired, len(live))

    def _pod_delete(self, fault: PodDeleteFault, fault_id: str, rng: random.Random) -> tuple[list[str], str, dict[str, str]]:
        live = self._live_pods()
        total = self._pod_total(live)
        candidates = [p.name for p in live]
        if fault.force:
            # As on sim: force is for pods stuck Terminating (on a lost node); a count picks
            # among those when there are any, and a name may name one.
            stuck = [p.name for p in self._live_pods(include_terminating=True) if p.terminating]
            candidates = stuck if stuck and fault.target.name is None else sorted({*candidates, *stuck})
        targets = self._choose(fault.target, candidates, total, rng, "pods", fault_id, fault.action)
        check_blast_radius(
            fault_id=fault_id, action=fault.action, what="pods", hit=targets, already=(), total=total,
            max_fraction=self.spec.max_blast_radius,
        )
        # Force deletion is gracePeriodSeconds=0 (kubectl delete --force --grace-period=0).
        grace = 0 if fault.force else fault.grace_period_seconds
        assert self.namespace is not None
        for name in targets:
            self._causes.mark_pod(name, "pod-delete")
            self.api.delete_pod(self.namespace, name, grace)
        detail = "" if grace is None else f"gracePeriodSeconds={grace}"
        return targets, detail, {}

    def _container_kill(self, fault: ContainerKillFault, fault_id: str, rng: random.Random) -> tuple[list[str], str, dict[str, str]]:
        objects = self._require_objects()
        live = [p for p in self._live_pods() if p.phase == "Running"]
        total = self._pod_total(live)
        targets = self._choose(fault.target, [p.name for p in live], total, rng, "running pods", fault_id, fault.action)
        check_blast_radius(
            fault_id=fault_id, action=fault.action, what="pods", hit=targets, already=(), total=total,
            max_fraction=self.spec.max_blast_radius,
        )
        signal = fault.signal.removeprefix("SIG")
        assert self.namespace is not None
        pids = []
        for name in targets:
            self._causes.mark_pod(name, "container-kill")
            try:
                result = self.api.exec_in_container(
                    self.namespace,
                    name,
                    objects.container,
                    ["/bin/sh", "-c", CONTAINER_KILL_SCRIPT, "container-kill", signal],
                    self.timeouts.exec_seconds,
                )
            except ExecUnsupported as exc:
                raise _no_shell(f"{fault_id} container-kill", objects.image, exc) from exc
            if result.exit_code == _INIT_UNKILLABLE_EXIT:
                raise UsageError(
                    f"{fault_id} container-kill with {fault.signal} cannot reach the main process of image "
                    f"{objects.image}: it is PID 1 of its container, and the kernel ignores {fault.signal} "
                    "sent to a PID namespace's init from inside it; use signal: SIGTERM, or run the "
                    "image with shareProcessNamespace: true (the built-in app does)"
                )
            if result.exit_code not in (0, None):
                raise ClusterError(
                    f"{fault_id} container-kill in pod {name}: the kill command failed "
                    f"(exit {result.exit_code}): {result.stderr.strip() or result.stdout.strip()}"
                )
            pids.append(result.stdout.strip() or "?")
        return targets, f"signal={fault.signal} pid={','.join(pids)}", {}

    def _node_candidates(self, fault_id: str, action: str, target: TargetSpec) -> tuple[list[str], int, dict[str, NodeRecord]]:
        """Worker nodes hosting the workload's pods and not already faulted; the worker count."""
        nodes = {n.name: n for n in self.api.list_nodes().items}
        if target.name is not None and target.name in nodes:
            check_not_control_plane(nodes[target.name], fault_id, action)
        hosting = {p.node for p in self._live_pods() if p.node}
        with self._lock:
            faulted = set(self._node_faults)
        candidates = sorted(
            name for name, node in nodes.items() if name in hosting and not node.control_plane and name not in faulted
        )
        workers = sum(1 for node in nodes.values() if not node.control_plane)
        return candidates, workers, nodes

    def _check_node_radius(self, fault_id: str, action: str, targets: Sequence[str], workers: int) -> None:
        with self._lock:
            already = list(self._node_faults)
        check_blast_radius(
            fault_id=fault_id, action=action, what="worker nodes", hit=targets, already=already, total=workers,
            max_fraction=self.spec.max_blast_radius,
        )

    def _node_machine_fault(
        self, fault: NodeCrashFault | NodeHangFault, fault_id: str, rng: random.Random
    ) -> tuple[list[str], str, dict[str, str]]:
        candidates, workers, _ = self._node_candidates(fault_id, fault.action, fault.target)
        targets = self._choose(fault.target, candidates, workers, rng, "worker nodes hosting the workload", fault_id, fault.action)
        self._check_node_radius(fault_id, fault.action, targets, workers)
        machine = "crash" if isinstance(fault, NodeCrashFault) else "hang"
        for node in targets:
            with self._lock:
                # Recorded before acting: if the provider fails half-way, teardown restores.
                self._node_faults[node] = _NodeFault(fault_id=fault_id, action=fault.action, machine=machine)
                self._touched_nodes.add(node)
            self._causes.mark_node(node, fault.action)
            try:
                if machine == "crash":
                    self.provider.crash(node)
                else:
                    self.provider.hang(node)
            except UsageError:
                with self._lock:  # refused before anything happened: nothing to restore
                    self._node_faults.pop(node, None)
                    self._touched_nodes.discard(node)
                raise
        return targets, f"provider={self.provider.name}", {}

    def _node_drain(self, fault: NodeDrainFault, fault_id: str, rng: random.Random) -> tuple[list[str], str, dict[str, str]]:
        candidates, workers, nodes = self._node_candidates(fault_id, fault.action, fault.target)
        targets = self._choose(fault.target, candidates, workers, rng, "worker nodes hosting the workload", fault_id, fault.action)
        self._check_node_radius(fault_id, fault.action, targets, workers)
        evicted: list[str] = []
        blocked: list[str] = []
        for node in targets:
            drain = _Drain(node=node, deadline=time.monotonic() + fault.timeout, grace_period_seconds=fault.grace_period_seconds)
            record = _NodeFault(fault_id=fault_id, action=fault.action, drain=drain)
            with self._lock:
                self._node_faults[node] = record
                self._touched_nodes.add(node)
            self._causes.mark_node(node, "drain")
            if not nodes[node].unschedulable:
                record.cordoned = True
                self.api.set_node_unschedulable(node, True)
            self._evict_round(drain)
            evicted += drain.evicted
            blocked += sorted(drain.blocked)
            if drain.blocked:
                drain.thread = threading.Thread(target=self._drain_loop, args=(drain,), name=f"chaoslab-drain-{node}", daemon=True)
                drain.thread.start()
        detail = f"evicted={len(evicted)}"
        if blocked:
            detail += f" blockedByPDB={len(blocked)}"
        if fault.grace_period_seconds is not None:
            detail += f" gracePeriodSeconds={fault.grace_period_seconds}"
        return targets, detail, {"evicted": ";".join(evicted), "blocked": ";".join(blocked)}

    def _evict_round(self, drain: _Drain) -> None:
        """Evict the workload's pods on the node once; PDB refusals stay in `blocked`."""
        assert self.namespace is not None
        drain.blocked = set()
        for pod in self._live_pods():
            if pod.node != drain.node:
                continue
            self._causes.mark_pod(pod.name, "drain")
            try:
                self.api.evict_pod(self.namespace, pod.name, drain.grace_period_seconds)
            except EvictionBlocked:
                drain.blocked.add(pod.name)
                continue
            except NotFound:
                continue  # already gone: nothing to evict
            drain.evicted.append(pod.name)

    def _drain_loop(self, drain: _Drain) -> None:
        while drain.blocked and not drain.stop.wait(self.timeouts.drain_retry_seconds):
            if time.monotonic() >= drain.deadline:
                return  # like `kubectl drain --timeout`: give up, the node stays cordoned
            try:
                self._evict_round(drain)
            except ClusterError as exc:
                drain.error = exc
                with self._lock:
                    self._background_errors.append(exc)
                return

    def _node_restore(self, fault: NodeRestoreFault, fault_id: str, rng: random.Random) -> tuple[list[str], str, dict[str, str]]:
        with self._lock:
            faulted = sorted(self._node_faults)
        if not faulted:
            return [], "nothing to restore", {}
        if fault.target.name is not None:
            targets = self._choose(fault.target, faulted, len(faulted), rng, "faulted nodes", fault_id, fault.action)
        elif fault.target.count is not None:
            targets = sorted(rng.sample(faulted, min(fault.target.count, len(faulted))))
        else:
            assert fault.target.percent is not None
            targets = sorted(rng.sample(faulted, percent_of(fault.target.percent, len(faulted))))
        for node in targets:
            self._restore_node(node)
        self._sink.put(
            ClusterEvent(self.clock(), EventKind.FAULT_RESTORED, "fault", fault_id, ";".join(targets), fault.action, f"targets={';'.join(targets)}")
        )
        return targets, "", {}

    def _scale(self, deployment: Deployment, fault: ScaleFault) -> tuple[list[str], str, dict[str, str]]:
        if self._require_objects().kind == "StatefulSet":
            self.api.patch_stateful_set_scale(deployment.namespace, deployment.name, fault.replicas)
        else:
            self.api.patch_deployment_scale(deployment.namespace, deployment.name, fault.replicas)
        previous, self._desired = self._desired, fault.replicas
        self._sink.put(
            ClusterEvent(
                self.clock(), EventKind.SCALED, "deployment", deployment.name, "", "scale",
                f"replicas={fault.replicas} previous={previous}",
            )
        )
        return [deployment.name], f"replicas={fault.replicas}", {}

    # --- restore --------------------------------------------------------------------

    def _restore_node(self, node: str) -> bool:
        """Undo what chaoslab did to one node; False when there was nothing to undo."""
        with self._lock:
            # Claimed under the lock, so a restoreAfter timer and teardown never both act.
            record = self._node_faults.pop(node, None)
        if record is None:
            return False
        try:
            if record.drain is not None:
                record.drain.stop.set()
            if record.machine is not None:
                self.provider.restore(node)
                record.machine = None
            if record.cordoned:
                self._causes.mark_node(node, "restore")
                self.api.set_node_unschedulable(node, False)
                record.cordoned = False
        except BaseException:
            with self._lock:  # what is left undone stays recorded for the next attempt
                self._node_faults.setdefault(node, record)
            raise
        return True

    def restore(self, injection: Injection) -> None:
        """Undo a node fault (idempotent: a node already restored is left alone)."""
        if not injection.restorable:
            return
        restored = [node for node in injection.targets if self._restore_node(node)]
        if restored:
            self._sink.put(
                ClusterEvent(
                    self.clock(), EventKind.FAULT_RESTORED, "fault", injection.fault_id, ";".join(restored),
                    injection.action, f"targets={';'.join(restored)}",
                )
            )

    def _auto_restore(self, injection: Injection) -> None:
        """restoreAfter: runs in a timer thread; a failure is kept for teardown to retry."""
        if self._torn_down or self._closed:
            return
        try:
            self.restore(injection)
        except ChaoslabError as exc:
            with self._lock:
                self._background_errors.append(
                    ClusterError(f"{injection.fault_id} restoreAfter failed (teardown retries): {exc}")
                )

    # --- events ---------------------------------------------------------------------

    def _check_watchers(self) -> None:
        now = self.clock()
        for watcher in self._watchers:
            failure, since = watcher.failure, watcher.failing_since
            if failure is not None and since is not None and now - since > self.timeouts.watch_failure_seconds:
                raise ClusterError(
                    f"watching {watcher.kind} has failed for {now - since:.0f}s, so cluster events are "
                    f"missing: {failure}"
                ) from failure

    def events(self) -> Iterator[ClusterEvent]:
        """Events since the last call. Raises a background failure (a restoreAfter or a
        drain that failed, a watch that stays broken) once, after handing over nothing."""
        events = self._sink.drain()
        with self._lock:
            background, self._background_errors = self._background_errors[:1], self._background_errors[1:]
        if background:
            for event in events:
                self._sink.put(event)  # kept for the next call, after the error is reported
            raise background[0]
        self._check_watchers()
        return iter(events)

    def autoscaler_samples(self) -> Iterator[AutoscalerSample]:
        """The real HPA's evaluations since the last call, as its status changes showed them
        (watched, `AutoscalerTracker`); none without autoscaling."""
        return iter(self._samples.drain())

    # --- teardown -------------------------------------------------------------------

    def teardown(self, deployment: Deployment) -> None:
        """Undo every fault, delete what was deployed, and verify both; errors listed."""
        self._cleanup()

    def _cleanup(self) -> None:
        errors: list[ClusterError] = []

        def step(action: Callable[[], object]) -> None:
            try:
                action()
            except ChaoslabError as exc:
                errors.append(exc if isinstance(exc, ClusterError) else ClusterError(str(exc)))

        with self._lock:
            timers, self._timers = list(self._timers), []
            nodes = sorted(self._node_faults)
            drains = [f.drain for f in self._node_faults.values() if f.drain is not None]
        for timer in timers:
            timer.cancel()
        for drain in drains:
            drain.stop.set()
        for node in nodes:
            step(lambda node=node: self._restore_node(node))
        step(self._delete_workload)
        step(self._verify_nodes)
        step(self._verify_deleted)
        self._torn_down = True
        for drain in drains:
            if drain.thread is not None:
                drain.thread.join(self.timeouts.thread_join_seconds)
        if errors:
            left = "; ".join(str(e) for e in errors)
            raise ClusterError(f"teardown did not finish cleanly: {left}. {self._manual_cleanup_hint()}") from errors[0]

    def _delete_workload(self) -> None:
        namespace = self.namespace
        if namespace is None:
            return
        if self.namespace_created:
            try:
                self.api.delete_namespace(namespace)
            except NotFound:
                pass  # already gone
            return
        with self._lock:
            created = list(self._created)
        # Only what this run created: an object that already existed (a create that
        # failed with 409) belongs to someone else.
        for kind, name in reversed(created):
            try:
                self.api.delete_object(namespace, kind, name)
            except NotFound:
                continue  # never created (deploy failed half-way) or already gone
        # A StatefulSet's claims outlive it (persistentVolumeClaimRetentionPolicy defaults to
        # Retain); these are the ones its volumeClaimTemplate named, labelled as its pods.
        objects = self.objects
        if objects is not None and objects.claims:
            for claim in self.api.list_claims(namespace, objects.label_selector):
                if claim in objects.claims:
                    try:
                        self.api.delete_object(namespace, "PersistentVolumeClaim", claim)
                    except NotFound:
                        continue

    def _verify_deleted(self) -> None:
        namespace = self.namespace
        if namespace is None:
            return
        deadline = time.monotonic() + self.timeouts.namespace_delete_seconds
        while True:
            if self.namespace_created:
                try:
                    self.api.read_namespace(namespace)
                except NotFound:
                    self._namespace_gone = True
                    return
                what = f"namespace {namespace}"
            else:
                if self.objects is None:
                    return
                left = self.api.list_pods(namespace, self.objects.label_selector).items
                if not left:
                    return
                what = f"{len(left)} pod(s) of {self.objects.deployment} in namespace {namespace}"
            if time.monotonic() >= deadline:
                raise ClusterError(f"{what} still exists {self.timeouts.namespace_delete_seconds:g}s after deletion")
            time.sleep(self.timeouts.poll_seconds)

    def _verify_nodes(self) -> None:
        """Every node chaoslab touched is back: machine running, Ready, not cordoned by us."""
        with self._lock:
            touched = sorted(self._touched_nodes)
            still_faulted = sorted(self._node_faults)
        if still_faulted:
            raise ClusterError(f"nodes not restored: {', '.join(still_faulted)}")
        if not touched:
            return
        deadline = time.monotonic() + self.timeouts.node_ready_seconds
        while True:
            problems = []
            nodes = {n.name: n for n in self.api.list_nodes().items}
            for name in touched:
                node = nodes.get(name)
                if node is None:
                    problems.append(f"{name} is no longer a node of the cluster")
                    continue
                state = self.provider.state(name)
                if state not in ("running", "unknown"):
                    problems.append(f"{name}'s machine is {state}")
                elif node.ready != "True":
                    problems.append(f"{name} is not Ready (Ready={node.ready})")
            if not problems:
                return
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"after restoring, {'; '.join(problems)} ({self.timeouts.node_ready_seconds:g}s later)"
                )
            time.sleep(self.timeouts.poll_seconds)

    def _manual_cleanup_hint(self) -> str:
        hints = []
        if self.namespace and self.namespace_created and not self._namespace_gone:
            hints.append(f"kubectl delete namespace {self.namespace}")
        with self._lock:
            for node, record in sorted(self._node_faults.items()):
                if record.cordoned:
                    hints.append(f"kubectl uncordon {node}")
                if record.machine is not None:
                    hints.append(f"bring node {node} back ({self.provider.describe(node)})")
        return "Check by hand: " + "; ".join(hints) if hints else "Check the cluster by hand (kubectl get nodes,namespaces)."

    def close(self) -> None:
        """Stop watches and timers; if teardown never ran (deploy failed), clean up first."""
        if self._closed:
            return
        try:
            needs_cleanup = not self._torn_down and (self.namespace_created or self.objects is not None or self._node_faults)
            if needs_cleanup:
                self._cleanup()
        finally:
            self._closed = True
            with self._lock:
                timers, self._timers = list(self._timers), []
            for timer in timers:
                timer.cancel()
            for watcher in self._watchers:
                watcher.stop(self.timeouts.thread_join_seconds)
            self.api.close()


def _read_app(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ClusterError(f"cannot read the built-in app {path}: {exc}") from exc


def _no_shell(what: str, image: str, cause: Exception) -> UsageError:
    return UsageError(
        f"{what} is unsupported for image {image}: it runs `kill` through /bin/sh in the "
        f"container, and the image has none ({cause}); use pod-delete, or an image with a shell"
    )

