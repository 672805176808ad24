"""SimCluster: the `Cluster` protocol over the simulated control plane, kubelets and proxies.

Why it exists: the engine talks to one object with domain verbs; this module is that
object for the `sim` backend. It owns the control-plane thread, turns faults into
actions on the simulated machines, and guarantees that every process it started is
gone after `close()` (or when its owner dies: PR_SET_PDEATHSIG, see processes.py).

Threading: one long-lived control-plane thread runs every component (kubelets and
controllers) each tick (TICK_SECONDS) plus due timers (`restoreAfter`). Every mutation
runs on that thread: public methods that change state hand a function to it and wait
(`_call`), so processes are always forked by the same long-lived thread (PDEATHSIG is
per forking thread) and components never race. Read-only methods (pods, nodes,
events) take the world lock briefly from the caller's thread.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import queue
import random
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from chaoslab.cluster.base import AutoscalerSample, ClusterEvent, Deployment, EventKind, Injection, Node, Pod
from chaoslab.cluster.network import ClientNetwork, HostNetwork
from chaoslab.cluster.sim.controllers import ControlPlane, desired_healthy
from chaoslab.cluster.sim.hpa import HorizontalPodAutoscalers
from chaoslab.cluster.sim.kernelservice import KernelService, KernelServices
from chaoslab.cluster.sim.kubelet import Kubelet
from chaoslab.cluster.sim.netns import NetworkUnavailable, PrivateNetwork
from chaoslab.cluster.sim.probes import Prober
from chaoslab.cluster.sim.processes import PortAllocator, Reaper, describe_exit, tail
from chaoslab.cluster.sim.service import ServiceProxyProcess, start_proxy
from chaoslab.cluster.sim.stateful import Volumes
from chaoslab.cluster.sim.state import (
    CONTAINER_RUNNING,
    CONTAINER_STOPPING,
    NODE_CRASHED,
    NODE_HUNG,
    NODE_UP,
    Drain,
    EventLog,
    SimDeployment,
    SimNode,
    SimPod,
    World,
)
from chaoslab.errors import ClusterError
from chaoslab.spec import (
    ContainerKillFault,
    FaultSpec,
    NodeCrashFault,
    NodeDrainFault,
    NodeHangFault,
    NodeRestoreFault,
    PodDeleteFault,
    ScaleFault,
    SimClusterSpec,
    TargetSpec,
    WorkloadSpec,
)

# Control-plane resolution: 20 ms is far below every Kubernetes delay worth modelling
# (the smallest upstream default is the 100 ms node eviction pass), and costs ~2 % CPU.
TICK_SECONDS = 0.02
# How long a public call waits for the control-plane thread before giving up.
CALL_TIMEOUT = 120.0
# How often wait_ready looks at the cluster.
READY_POLL_SECONDS = 0.05
NAMESPACE = "sim"
# How the user-space proxy path describes itself in run.json and the report.
USERSPACE_DESCRIPTION = "user-space proxy on 127.0.0.1"

Service = ServiceProxyProcess | KernelService

T = TypeVar("T")


def _kill_everything(
    world: World,
    services: dict[str, Service],
    prober: Prober,
    ordinal_services: dict[str, dict[str, Service]],
    network: PrivateNetwork | None,
) -> None:
    """Last-resort cleanup, shared by close() and the garbage collector / interpreter exit."""
    processes = [pod.process for pod in world.all_pods() if pod.process is not None]
    for process in processes:
        process.signal_group(signal.SIGKILL)
    for process in processes:
        process.kill(wait=5.0)
    for pod in world.all_pods():
        pod.process = None
    for service in [*services.values(), *(s for group in ordinal_services.values() for s in group.values())]:
        service.stop()
    services.clear()
    ordinal_services.clear()
    prober.close()
    if network is not None:
        network.close()  # its last process is gone: the namespace with it
    if world.reaper is not None:
        world.reaper.close()  # every group is gone and forgotten: it just exits


class _ActiveFault:
    """A restorable injection and whether it was undone."""

    def __init__(self, injection: Injection) -> None:
        self.injection = injection
        self.restored = False


class SimCluster:
    """The simulated Kubernetes cluster (see the package docstring for the model).

    `clock` stamps events (wall-clock epoch seconds); `workdir` keeps pod and proxy
    logs (a temporary folder, removed on close, when None); `seed` makes pod names and
    proxy balancing repeatable; `port_rng` picks the loopback ports (seeded from the
    system's entropy when None).
    """

    def __init__(
        self,
        spec: SimClusterSpec,
        *,
        clock: Callable[[], float] = time.time,
        workdir: Path | None = None,
        seed: int = 0,
        port_rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._rng = random.Random(seed)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="chaoslab-sim-")
            workdir = Path(self._tmp.name)
        self.workdir = Path(workdir)
        self._log_dir = self.workdir / "logs"
        self._log_dir.mkdir(parents=True, exist_ok=True)
        now = time.monotonic()
        timings = spec.timings
        nodes = {
            f"node-{i}": SimNode(
                name=f"node-{i}", last_heartbeat=now, next_heartbeat=now + timings.node_heartbeat_period
            )
            for i in range(1, spec.nodes + 1)
        }
        # Started first, so that every process group after it is registered; it also
        # removes the temporary folder if the engine is killed.
        reaper = Reaper(remove=[self.workdir] if self._tmp is not None else [])
        try:
            self._network, self._client_network = self._private_network(spec, reaper)
        except BaseException:
            reaper.close()
            if self._tmp is not None:
                self._tmp.cleanup()
            raise
        self._kernel = KernelServices(self._network) if self._network is not None else None
        self._world = World(
            timings=timings,
            events=EventLog(clock),
            nodes=nodes,
            # Not from `seed`: two runs with the same seed on one machine would try the
            # same ports in the same order and race for each.
            ports=PortAllocator(port_rng if port_rng is not None else random.Random()),
            reaper=reaper,
            addresses=self._kernel,
            enter=self._network.preexec() if self._network is not None else None,
        )
        self._prober = Prober(network=self._client_network)
        base_env = dict(os.environ)
        self._kubelets = {name: Kubelet(self._world, node, self._prober, base_env) for name, node in nodes.items()}
        self._autoscalers = HorizontalPodAutoscalers(self._world, clock)
        self._volumes = Volumes(self.workdir / "volumes")
        self._control = ControlPlane(self._world, self._rng, self._log_dir, self._publish, self._volumes)
        self._services: dict[str, Service] = {}
        # Per-ordinal Services of StatefulSets (`<pod name>` -> Service), started on demand.
        self._ordinal_services: dict[str, dict[str, Service]] = {}
        self._service_failures: dict[str, str] = {}
        self._faults: dict[str, _ActiveFault] = {}
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._timer_sequence = itertools.count()
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._finalizer = weakref.finalize(
            self, _kill_everything, self._world, self._services, self._prober, self._ordinal_services, self._network
        )
        for name in nodes:
            self._world.emit(EventKind.NODE_READY, "node", name, node=name, reason="NodeRegistered", detail="status=True")
        self._thread = threading.Thread(target=self._run, name="sim-control-plane", daemon=True)
        self._thread.start()

    # --- context manager ------------------------------------------------------------

    def __enter__(self) -> SimCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the Cluster protocol -------------------------------------------------------

    def deploy(self, workload: WorkloadSpec) -> Deployment:
        """Create the Deployment and its Service (proxy); pods follow asynchronously."""
        if workload.pod_disruption_budget is not None:
            desired_healthy(workload.pod_disruption_budget, workload.replicas)  # fail early on a bad value

        def create() -> Deployment:
            if workload.name in self._world.deployments:
                raise ClusterError(
                    f"a deployment named {workload.name!r} already exists on the simulated cluster; "
                    "tear it down first or choose another workload.name"
                )
            service = self._start_service(workload.name, seed=self._rng.randrange(2**31))
            with self._world.lock:
                self._services[workload.name] = service
                self._world.deployments[workload.name] = SimDeployment(
                    name=workload.name, spec=workload, desired=workload.replicas
                )
                self._world.emit(
                    EventKind.SCALED,
                    "deployment",
                    workload.name,
                    reason="deploy",
                    detail=f"replicas={workload.replicas}",
                )
                self._autoscalers.add(self._world.deployments[workload.name], time.monotonic())
            return Deployment(name=workload.name, namespace=NAMESPACE, replicas=workload.replicas)

        return self._call(create)

    def _private_network(self, spec: SimClusterSpec, reaper: Reaper) -> tuple[PrivateNetwork | None, ClientNetwork]:
        """The run's private network for the kernel Service and where clients stand; the
        host's network, saying why, when the spec asks for the user-space proxy or (`auto`)
        this machine cannot make one."""
        if spec.proxy_mode == "userspace":
            return None, HostNetwork(f"{USERSPACE_DESCRIPTION} (cluster.sim.proxyMode is userspace)")
        try:
            network = PrivateNetwork.start(sys.executable, dict(os.environ), reaper, self._log_dir / "network.log")
        except NetworkUnavailable as exc:
            if spec.proxy_mode == "nftables":
                raise ClusterError(
                    f"cluster.sim.proxyMode is nftables, but this machine cannot give the run a private "
                    f"network: {exc}. Use proxyMode: auto (falls back to the user-space proxy) or userspace"
                ) from exc
            return None, HostNetwork(f"{USERSPACE_DESCRIPTION} ({exc})")
        return network, network

    def client_network(self) -> ClientNetwork:
        """Where Locust and the probes must stand to reach this cluster's Service URLs."""
        return self._client_network

    def _start_service(self, name: str, seed: int) -> Service:
        """The Service: kube-proxy rules for a new ClusterIP on the kernel path; else the
        user-space proxy on a free port, another port when a process elsewhere on the
        machine takes the chosen one before the proxy binds it."""
        if self._kernel is not None:
            return self._kernel.create(name)
        return start_proxy(
            name,
            self._world.ports,
            seed=seed,
            python=sys.executable,
            env=dict(os.environ),
            log_path=self._log_dir / f"service-{name}.log",
            reaper=self._world.reaper,
        )

    def wait_ready(self, deployment: Deployment, timeout: float) -> None:
        """Block until the Service routes to exactly the desired number of ready pods.

        Raises ClusterError naming every pod that is not ready and why.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            with self._world.lock:
                sim = self._deployment(deployment)
                ready, problems = self._readiness(sim)
                desired = sim.desired
                done = ready == desired and len(sim.active_pods()) == desired and not problems
            self._check_service(deployment.name)
            if done:
                return
            if time.monotonic() >= deadline:
                detail = "; ".join(problems) if problems else "endpoints not yet propagated"
                raise ClusterError(
                    f"{ready} of {desired} pods ready after {timeout:g}s: {detail}. "
                    f"Pod logs: {self._log_dir}"
                )
            time.sleep(READY_POLL_SECONDS)

    def service_url(self, deployment: Deployment) -> str:
        self._check_alive()
        self._check_service(deployment.name)
        service = self._services.get(deployment.name)
        if service is None:
            raise ClusterError(f"no deployment named {deployment.name!r} on the simulated cluster")
        return service.url

    def ordinal_url(self, deployment: Deployment, ordinal: int) -> str:
        """A stable address of one StatefulSet ordinal, as a per-ordinal Service gives it.

        Upstream a headless Service gives each pod the DNS name
        `<pod>.<service>.<namespace>.svc` (kubernetes.io/docs/concepts/workloads/
        controllers/statefulset/#stable-network-id), and from outside the cluster a
        Service per ordinal selecting `statefulset.kubernetes.io/pod-name: <pod>`
        reaches it. The sim has no DNS, so it starts that per-ordinal Service: a proxy
        whose only endpoint is the ready pod `<name>-<ordinal>`, whichever port the
        current incarnation listens on.
        """
        return self._call(lambda: self._ordinal_service(deployment, ordinal).url)

    def pods(self, deployment: Deployment) -> list[Pod]:
        with self._world.lock:
            sim = self._deployment(deployment)
            return [pod.snapshot() for pod in sorted(sim.pods.values(), key=lambda p: p.name)]

    def nodes(self) -> list[Node]:
        with self._world.lock:
            return [node.snapshot() for node in sorted(self._world.nodes.values(), key=lambda n: n.name)]

    def endpoints(self, deployment: Deployment) -> list[str]:
        """The addresses the Service routes new connections to right now (host:port)."""
        with self._world.lock:
            sim = self._deployment(deployment)
            return sorted(f"{host}:{port}" for (host, port), _ in sim.published.values())

    def events(self) -> Iterator[ClusterEvent]:
        """Events recorded since the previous call (non-blocking drain), in order."""
        return self._world.events.drain()

    def autoscaler_samples(self) -> Iterator[AutoscalerSample]:
        """HPA evaluations since the previous call (non-blocking drain), in order."""
        return self._autoscalers.samples()

    def check_faults(self, deployment: Deployment, faults: Sequence[FaultSpec]) -> None:
        """Nothing to refuse: a simulated pod is a process this machine can signal, and the
        loader has already checked node names and counts against the simulated nodes."""
        with self._world.lock:
            self._deployment(deployment)

    def inject(self, deployment: Deployment, fault: FaultSpec, fault_id: str, rng: random.Random) -> Injection:
        """Carry out `fault` now; targets are drawn with `rng` from candidates sorted by name."""
        return self._call(lambda: self._inject(deployment, fault, fault_id, rng))

    def restore(self, injection: Injection) -> None:
        """Undo a node fault (node back, heartbeats resume) or a drain (uncordon). Idempotent."""
        self._call(lambda: self._restore(injection, time.monotonic()))

    def teardown(self, deployment: Deployment) -> None:
        """Undo outstanding faults, then delete the workload's pods and Service at once."""
        self._call(lambda: self._teardown(deployment.name))

    def close(self) -> None:
        """Stop the control plane and kill every process. Safe to call twice, or from a signal handler."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        acquired = self._world.lock.acquire(timeout=5.0)
        try:
            for node in self._world.nodes.values():
                node.state = NODE_UP  # nothing stays frozen: stopped groups are killed below
            self._finalizer()
        finally:
            if acquired:
                self._world.lock.release()
        if self._tmp is not None:
            self._tmp.cleanup()

    # --- the control-plane thread ---------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._run_calls()
                now = time.monotonic()
                with self._world.lock:
                    self._fire_timers(now)
                    for kubelet in self._kubelets.values():
                        kubelet.tick(now)
                    self._control.tick(now)
                    self._autoscalers.tick(now)
                if self._wake.wait(self._sleep_time(now)):
                    self._wake.clear()
        except BaseException as exc:  # noqa: BLE001 - recorded and re-raised to every caller
            self._failure = exc
        finally:
            self._fail_pending_calls()

    def _sleep_time(self, now: float) -> float:
        if self._timers:
            return max(0.0, min(TICK_SECONDS, self._timers[0][0] - now))
        return TICK_SECONDS

    def _run_calls(self) -> None:
        while True:
            try:
                function, future = self._calls.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                with self._world.lock:
                    result = function()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)
            else:
                future.set_result(result)

    def _fail_pending_calls(self) -> None:
        while True:
            try:
                _, future = self._calls.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(ClusterError("the simulated cluster was closed"))

    def _call(self, function: Callable[[], T]) -> T:
        self._check_alive()
        if threading.current_thread() is self._thread:
            with self._world.lock:
                return function()
        future: Future[T] = Future()
        self._calls.put((function, future))
        self._wake.set()
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            try:
                return future.result(timeout=0.5)
            except TimeoutError:
                if self._failure is not None or self._closed or not self._thread.is_alive():
                    self._check_alive()
                    raise ClusterError("the simulated cluster stopped before answering") from None
                if time.monotonic() >= deadline:
                    raise ClusterError(
                        f"the simulated control plane did not answer within {CALL_TIMEOUT:g}s"
                    ) from None

    def _check_alive(self) -> None:
        if self._failure is not None:
            raise ClusterError(f"the simulated control plane failed: {self._failure!r}") from self._failure
        if self._closed:
            raise ClusterError("the simulated cluster is closed")

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action(now)

    def _after(self, delay: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_sequence), action))

    def _publish(self, sim: SimDeployment, ack: bool) -> None:
        service = self._services.get(sim.name)
        if service is None:
            return
        try:
            service.update(
                sorted(address for address, _ in sim.published.values()), sorted(sim.blackhole), ack=ack
            )
            for pod_name, ordinal_service in self._ordinal_services.get(sim.name, {}).items():
                endpoint = sim.published.get(pod_name)
                pod = sim.pods.get(pod_name)
                blackhole = [pod.address] if pod is not None and pod.address in sim.blackhole else []
                ordinal_service.update([endpoint[0]] if endpoint else [], blackhole, ack=ack)
        except ClusterError as exc:
            self._service_failures[sim.name] = str(exc)

    def _ordinal_service(self, deployment: Deployment, ordinal: int) -> Service:
        sim = self._deployment(deployment)
        if not sim.spec.stateful:
            raise ClusterError(f"{sim.name} is a Deployment: its pods have no ordinals to address")
        pod_name = f"{sim.name}-{ordinal}"
        group = self._ordinal_services.setdefault(sim.name, {})
        if pod_name not in group:
            group[pod_name] = self._start_service(pod_name, seed=self._rng.randrange(2**31))
            self._publish(sim, False)
        return group[pod_name]

    def _check_service(self, name: str) -> None:
        failure = self._service_failures.get(name)
        if failure:
            raise ClusterError(failure)

    # --- readiness report -----------------------------------------------------------

    def _deployment(self, deployment: Deployment) -> SimDeployment:
        sim = self._world.deployments.get(deployment.name)
        if sim is None:
            raise ClusterError(f"no deployment named {deployment.name!r} on the simulated cluster")
        return sim

    def _readiness(self, sim: SimDeployment) -> tuple[int, list[str]]:
        """Ready endpoints the Service routes to, and what keeps each other pod back."""
        problems = []
        published = set(sim.published)
        for pod in sorted(sim.active_pods(), key=lambda p: p.name):
            reason = self._pod_problem(pod, pod.name in published)
            if reason:
                problems.append(f"{pod.name} {reason}")
        missing = sim.desired - len(sim.active_pods())
        if missing > 0:
            problems.append(f"{missing} pod(s) not created yet")
        ready = sum(1 for name in published if name in sim.pods and not sim.pods[name].terminating)
        return ready, problems

    def _pod_problem(self, pod: SimPod, routed: bool) -> str:
        if pod.node is None:
            return f"Pending ({pod.pending_reason or 'not scheduled yet'})"
        node = self._world.nodes[pod.node]
        if node.state != NODE_UP or node.ready != "True":
            return f"on {pod.node}, which is not Ready (node {node.state}, Ready={node.ready})"
        if pod.container not in (CONTAINER_RUNNING, CONTAINER_STOPPING):
            if not pod.ever_started:
                return "Pending (ContainerCreating)"
            log = tail(pod.log_path)
            return (
                f"{pod.waiting_reason or 'Waiting'} (restartCount={pod.restart_count}, last exit: {pod.last_exit}"
                + (f", log: {log}" if log else "")
                + ")"
            )
        if not pod.ready:
            tracker = pod.readiness
            why = tracker.last_failure if tracker is not None and tracker.last_failure else "not probed yet"
            if pod.last_exit:
                # As `kubectl describe` shows Last State beside the probe: a container that
                # keeps dying is why its probe fails (and it may have died again since the
                # kubelet last looked: PLEG relists every plegRelistPeriod).
                log = tail(pod.log_path)
                why += f"; restartCount={pod.restart_count}, last exit: {pod.last_exit}" + (f", log: {log}" if log else "")
            return f"not ready (readiness probe: {why})"
        if not routed:
            return "ready, endpoint not yet propagated"
        return ""

    def _ready_count(self, sim: SimDeployment) -> int:
        return sum(1 for pod in sim.pods.values() if pod.ready and not pod.terminating)

    # --- faults ---------------------------------------------------------------------

    def _inject(self, deployment: Deployment, fault: FaultSpec, fault_id: str, rng: random.Random) -> Injection:
        sim = self._deployment(deployment)
        now = time.monotonic()
        ready_before = self._ready_count(sim)
        restorable = False
        detail = ""
        if isinstance(fault, PodDeleteFault):
            # `kubectl delete --force --grace-period=0` is what a pod stuck Terminating on a
            # lost node needs (the API removes its object at once): with force, a count or
            # percentage picks among Terminating pods when there are any, and a name may
            # name one.
            stuck = sorted(p.name for p in sim.pods.values() if p.terminating) if fault.force else []
            candidates = stuck or sorted(p.name for p in sim.active_pods())
            every = sorted(sim.pods) if fault.force else None
            pods = self._pick(candidates, fault.target, rng, "pod", all_names=every)
            grace = 0 if fault.force else fault.grace_period_seconds
            grace_s = float(grace if grace is not None else sim.spec.termination_grace_period_seconds)
            detail = f"gracePeriodSeconds={grace_s:g}" + (" force=true" if fault.force else "")
            ts = self._announce(fault_id, fault.action, pods, detail)
            for name in pods:
                pod = sim.pods[name]
                self._world.delete_pod(pod, grace_s, reason="pod-delete", now=now, force=fault.force)
                self._sync_now(pod, now)
            targets = pods
        elif isinstance(fault, ContainerKillFault):
            running = sorted(p.name for p in sim.active_pods() if p.process is not None and p.container == CONTAINER_RUNNING)
            targets = self._pick(running, fault.target, rng, "running pod")
            detail = f"signal={fault.signal}"
            ts = self._announce(fault_id, fault.action, targets, detail)
            for name in targets:
                process = sim.pods[name].process
                if process is not None:
                    process.signal_group(getattr(signal, fault.signal))
        elif isinstance(fault, (NodeCrashFault, NodeHangFault)):
            candidates = self._nodes_for(sim, lambda n: n.state == NODE_UP, prefer_workload=True)
            targets = self._pick(candidates, fault.target, rng, "node", all_names=sorted(self._world.nodes))
            restorable = True
            detail = f"restoreAfter={fault.restore_after:g}s" if fault.restore_after is not None else ""
            ts = self._announce(fault_id, fault.action, targets, detail)
            state = NODE_CRASHED if isinstance(fault, NodeCrashFault) else NODE_HUNG
            for name in targets:
                self._world.nodes[name].state = state
            self._control.refresh_blackholes()  # before the processes die: see proxy.py
            for name in targets:
                if state == NODE_CRASHED:
                    self._kubelets[name].crash(now)
                else:
                    self._kubelets[name].hang()
        elif isinstance(fault, NodeDrainFault):
            candidates = self._nodes_for(sim, lambda n: not n.unschedulable, prefer_workload=True)
            targets = self._pick(candidates, fault.target, rng, "node", all_names=sorted(self._world.nodes))
            restorable = True
            detail = f"timeout={fault.timeout:g}s" + (
                f" gracePeriodSeconds={fault.grace_period_seconds}" if fault.grace_period_seconds is not None else ""
            )
            ts = self._announce(fault_id, fault.action, targets, detail)
            for name in targets:
                grace = float(fault.grace_period_seconds) if fault.grace_period_seconds is not None else None
                drain = Drain(node=name, fault_id=fault_id, grace=grace, deadline=now + fault.timeout, next_attempt=now)
                self._control.start_drain(drain, now)
        elif isinstance(fault, NodeRestoreFault):
            candidates = self._nodes_for(
                sim, lambda n: n.state != NODE_UP or n.unschedulable, prefer_workload=False
            )
            targets = self._pick(candidates, fault.target, rng, "node", all_names=sorted(self._world.nodes))
            ts = self._announce(fault_id, fault.action, targets, detail)
            for name in targets:
                self._bring_back(name, now)
            for active in self._faults.values():
                if not active.restored and set(active.injection.targets) & set(targets):
                    self._restore(active.injection, now)
        elif isinstance(fault, ScaleFault):
            targets = (sim.name,)
            detail = f"replicas={fault.replicas}"
            ts = self._announce(fault_id, fault.action, targets, detail)
            sim.desired = fault.replicas
            self._world.emit(EventKind.SCALED, "deployment", sim.name, reason="scale", detail=f"replicas={fault.replicas}")
        else:  # pragma: no cover - the spec's discriminated union is closed
            raise ClusterError(f"the simulated cluster cannot carry out {fault!r}")
        self._control.endpoints(now)
        injection = Injection(
            fault_id=fault_id,
            action=fault.action,
            ts=ts,
            targets=tuple(targets),
            detail=detail,
            restorable=restorable,
            ready_before=ready_before,
            ready_after=self._ready_count(sim),
        )
        if restorable:
            self._faults[fault_id] = _ActiveFault(injection)
            restore_after = getattr(fault, "restore_after", None)
            if restore_after is not None:
                self._after(restore_after, lambda at: self._restore(injection, at))
        return injection

    def _announce(self, fault_id: str, action: str, targets: tuple[str, ...] | list[str], detail: str) -> float:
        text = f"targets={';'.join(targets)}" + (f" {detail}" if detail else "")
        if not targets:
            text += " skipped=no eligible target"
        return self._world.emit(EventKind.FAULT_INJECTED, "fault", fault_id, reason=action, detail=text).ts

    def _sync_now(self, pod: SimPod, now: float) -> None:
        """Let the pod's kubelet act on a deletion at once (SIGTERM without waiting a tick)."""
        if pod.node is not None and pod.name in self._world.deployments[pod.deployment].pods:
            self._kubelets[pod.node].sync_pod(pod, now)

    def _nodes_for(
        self, sim: SimDeployment, eligible: Callable[[SimNode], bool], prefer_workload: bool
    ) -> list[str]:
        """Eligible node names, sorted; with `prefer_workload`, those running the workload's pods if any."""
        names = sorted(name for name, node in self._world.nodes.items() if eligible(node))
        if prefer_workload:
            hosting = {pod.node for pod in sim.active_pods() if pod.node is not None}
            preferred = [name for name in names if name in hosting]
            if preferred:
                return preferred
        return names

    @staticmethod
    def _pick(
        candidates: list[str],
        target: TargetSpec,
        rng: random.Random,
        what: str,
        all_names: list[str] | None = None,
    ) -> tuple[str, ...]:
        """Targets drawn deterministically: candidates sorted by name, then rng.sample."""
        candidates = sorted(candidates)
        if target.name is not None:
            known = all_names if all_names is not None else candidates
            if target.name not in known:
                listed = ", ".join(known) or "none"
                raise ClusterError(f"target.name: no {what} named {target.name!r} (expected one of: {listed})")
            return (target.name,)
        if target.count is not None:
            count = target.count
        else:
            assert target.percent is not None
            count = math.ceil(target.percent * len(candidates) - 1e-9)
            if target.percent > 0:
                count = max(1, count)
        count = min(count, len(candidates))
        return tuple(sorted(rng.sample(candidates, count)))

    def _bring_back(self, name: str, now: float) -> None:
        node = self._world.nodes[name]
        if node.state != NODE_UP:
            self._kubelets[name].boot(now)
            self._control.refresh_blackholes()
        if node.unschedulable:
            self._control.uncordon(node)

    def _restore(self, injection: Injection, now: float) -> None:
        active = self._faults.get(injection.fault_id)
        if active is None or active.restored or not injection.restorable:
            return
        active.restored = True
        for name in injection.targets:
            node = self._world.nodes[name]
            if injection.action in ("node-crash", "node-hang") and node.state != NODE_UP:
                self._kubelets[name].boot(now)
                self._control.refresh_blackholes()
            elif injection.action == "node-drain":
                self._control.uncordon(node)
        self._world.emit(
            EventKind.FAULT_RESTORED,
            "fault",
            injection.fault_id,
            reason=injection.action,
            detail=f"targets={';'.join(injection.targets)}",
        )

    # --- teardown -------------------------------------------------------------------

    def _teardown(self, name: str) -> None:
        now = time.monotonic()
        for active in list(self._faults.values()):
            self._restore(active.injection, now)
        sim = self._world.deployments.get(name)
        if sim is None:
            return
        pods = list(sim.pods.values())
        for pod in pods:
            if pod.process is not None:
                pod.process.signal_group(signal.SIGKILL)
        for pod in pods:
            status = pod.process.kill() if pod.process is not None else None
            pod.process = None
            self._world.remove_pod(pod, reason="teardown", detail=describe_exit(status) if status is not None else "")
        del self._world.deployments[name]
        self._autoscalers.remove(name)
        self._volumes.remove_claims(sim)
        services = [self._services.pop(name, None), *self._ordinal_services.pop(name, {}).values()]
        for service in services:
            if service is not None:
                service.stop()
                if isinstance(service, ServiceProxyProcess):
                    self._world.ports.release(service.port)
        self._service_failures.pop(name, None)
