"""The simulated control plane: scheduler, ReplicaSet, Endpoints, node lifecycle, drain.

Why it exists: after a fault, what clients see is decided by controllers reacting to
state, each with its own delay. They are modelled on their upstream counterparts so the
sim's charts teach the lessons a real cluster would:

- Scheduler: binds a pod `scheduler_delay` after creation to the Ready, schedulable,
  untainted node with the fewest pods of its workload (spreading); none fits: the pod
  stays Pending with the scheduler's "0/3 nodes are available: ..." message.
- ReplicaSet: counts pods that are not terminating (upstream FilterActivePods), so a
  deleted or evicted pod is replaced at once, `controller_sync_delay` after the change,
  not after its grace period. Scale-down victims are ranked as upstream
  (ActivePodsWithRanks): unassigned, then pending, then not ready, then pods doubled up
  on a node, then ready for less time, then more restarts, then newer.
- Endpoints: a pod is an endpoint while Ready and not terminating. A change reaches the
  proxy `endpoint_propagation_delay` later (endpoint_added / endpoint_removed carry that
  moment). Endpoints of pods on a crashed or hung node are blackholed at once (physics,
  not a controller): the proxy stops answering for them.
- Node lifecycle: every `node_monitor_period` nodes whose heartbeat is older than
  `node_monitor_grace_period` become Ready=Unknown, get the unreachable NoSchedule
  taint, and their pods are marked NotReady (upstream MarkPodsNotReady, which removes
  them from endpoints). The unreachable NoExecute taint follows, rate-limited by
  `node_eviction_rate` (--node-eviction-rate, 0.1 node/s); each pod is evicted once its
  tolerationSeconds runs out. Zone states as upstream for a single zone: no Ready node
  at all (FullDisruption) removes the NoExecute taints and halts eviction; >= 55 % and
  more than 2 nodes NotReady (PartialDisruption, small cluster) stops new taints.
  A node comes back when its kubelet posts Ready=True again (kubelet.py): the NoSchedule
  taint goes at once (doNoScheduleTaintingPass is watch driven), the NoExecute one at
  the next monitor pass (processTaintBaseEviction -> markNodeAsReachable, which also
  drops the node from the tainting queue), and with it every pending eviction of its
  pods (the taint eviction controller's handleNodeUpdate: pod_eviction_cancelled).
  So a node whose heartbeats outlast the grace period flaps: Unknown at a monitor pass,
  Ready at its next heartbeat, each time with its events (node_not_ready, node_tainted,
  pod_not_ready; node_ready, node_untainted, pod_ready). Pods the controller marked
  NotReady come back when the kubelet syncs their status (kubelet.py).
- Drain (kubectl drain): cordon, then evict every pod through the eviction API, which
  refuses while the PodDisruptionBudget allows no disruption; refused evictions are
  retried every `drain_retry_interval` (kubectl: 5 s) until the drain's timeout.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

from chaoslab.cluster.base import EventKind
from chaoslab.cluster.sim.stateful import StatefulSetController, Volumes
from chaoslab.cluster.sim.state import (
    NODE_UP,
    TAINT_UNREACHABLE_NO_EXECUTE,
    TAINT_UNREACHABLE_NO_SCHEDULE,
    Drain,
    Endpoint,
    SimDeployment,
    SimNode,
    SimPod,
    World,
)
from chaoslab.errors import ClusterError
from chaoslab.spec import PodDisruptionBudgetSpec

# Characters of generated name suffixes (k8s.io/apimachinery/pkg/util/rand: no vowels,
# no digits that read like letters, so names never spell words).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NAME_SUFFIX_LENGTH = 5
# kube-controller-manager --unhealthy-zone-threshold default: 0.55.
UNHEALTHY_ZONE_THRESHOLD = 0.55
# A zone is only "partially disrupted" with more than this many NotReady nodes (upstream).
PARTIAL_DISRUPTION_MIN_NOT_READY = 2

ZONE_NORMAL = "Normal"
ZONE_PARTIAL = "PartialDisruption"
ZONE_FULL = "FullDisruption"


def desired_healthy(pdb: PodDisruptionBudgetSpec, expected: int) -> int:
    """Pods that must stay healthy under `pdb` when `expected` replicas are wanted.

    Percentages round up, as the disruption controller does for both fields.
    """
    if pdb.min_available is not None:
        return _scaled(pdb.min_available, expected)
    assert pdb.max_unavailable is not None
    return max(0, expected - _scaled(pdb.max_unavailable, expected))


def _scaled(value: int | str, total: int) -> int:
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.endswith("%"):
        raise ClusterError(f"podDisruptionBudget: expected a count or a percentage like 50%, got {value!r}")
    try:
        fraction = float(text[:-1]) / 100.0
    except ValueError as exc:
        raise ClusterError(f"podDisruptionBudget: expected a percentage like 50%, got {value!r}") from exc
    return math.ceil(fraction * total - 1e-9)


class ControlPlane:
    """Every controller of the simulated cluster; `tick` runs them once, in order."""

    def __init__(
        self,
        world: World,
        rng: random.Random,
        log_dir: Path | None,
        publish: Callable[[SimDeployment, bool], None],
        volumes: Volumes | None = None,
    ) -> None:
        self.world = world
        self.volumes = volumes
        self.statefulsets = StatefulSetController(world, self.create_pod)
        self.rng = rng
        self.log_dir = log_dir
        self.publish = publish  # sends a deployment's endpoints + blackhole to its proxy
        self.next_monitor = 0.0
        self.next_taint_allowed = 0.0
        self.sequence = 0

    def tick(self, now: float) -> None:
        self.replicasets(now)
        self.statefulsets.tick(now)
        self.scheduler(now)
        self.node_lifecycle(now)
        self.taint_manager(now)
        self.drains(now)
        self.endpoints(now)

    # --- ReplicaSet -----------------------------------------------------------------

    def replicasets(self, now: float) -> None:
        for deployment in self.world.deployments.values():
            if deployment.spec.stateful:
                continue  # the StatefulSet controller's (stateful.py)
            active = deployment.active_pods()
            diff = deployment.desired - len(active)
            if not deployment.sync_due_now(diff != 0, now, self.world.timings.controller_sync_delay):
                continue
            if diff > 0:
                for _ in range(diff):
                    self.create_pod(deployment, now)
            else:
                grace = float(deployment.spec.termination_grace_period_seconds)
                for victim in sorted(active, key=lambda pod: self._deletion_rank(deployment, pod))[:-diff]:
                    self.world.delete_pod(victim, grace, reason="ReplicaSet", now=now)

    def create_pod(self, deployment: SimDeployment, now: float, name: str | None = None) -> SimPod:
        """A new pod object: `name` (a StatefulSet's ordinal) or a generated one (ReplicaSet)."""
        owner = "StatefulSet" if name is not None else "ReplicaSet"
        name = name or self._pod_name(deployment.name)
        self.sequence += 1
        pod = SimPod(
            name=name,
            deployment=deployment.name,
            port=self.world.ports.allocate(),
            created=now,
            sequence=self.sequence,
            log_path=(self.log_dir / f"{name}.log") if self.log_dir is not None else None,
        )
        if self.volumes is not None:
            self.volumes.attach(deployment, pod)
        deployment.pods[name] = pod
        self.world.emit(EventKind.POD_CREATED, "pod", name, reason=owner)
        return pod

    def _pod_name(self, prefix: str) -> str:
        taken = {pod.name for pod in self.world.all_pods()}
        while True:
            suffix = "".join(self.rng.choice(NAME_ALPHABET) for _ in range(NAME_SUFFIX_LENGTH))
            name = f"{prefix}-{suffix}"
            if name not in taken:
                return name

    @staticmethod
    def _deletion_rank(deployment: SimDeployment, pod: SimPod) -> tuple[object, ...]:
        """Sort key: the pod to delete first sorts first (upstream ActivePodsWithRanks)."""
        colocated = sum(1 for other in deployment.active_pods() if other.node is not None and other.node == pod.node)
        ready_since = pod.ready_since if pod.ready and pod.ready_since is not None else 0.0
        return (
            pod.node is not None,
            pod.ever_started,
            pod.ready,
            -colocated,
            -ready_since,
            -pod.restart_count,
            -pod.sequence,
        )

    # --- scheduler ------------------------------------------------------------------

    def scheduler(self, now: float) -> None:
        for deployment in self.world.deployments.values():
            unbound = [pod for pod in deployment.pods.values() if pod.node is None and not pod.terminating]
            for pod in sorted(unbound, key=lambda p: p.sequence):
                if now < pod.created + self.world.timings.scheduler_delay:
                    continue
                node = self._pick_node(deployment)
                if node is None:
                    reason = self._unschedulable_reason()
                    if not pod.pending_reported or reason != pod.pending_reason:
                        pod.pending_reason = reason
                        pod.pending_reported = True
                        self.world.emit(
                            EventKind.POD_PENDING, "pod", pod.name, reason="FailedScheduling", detail=reason
                        )
                    continue
                pod.node = node.name
                pod.scheduled_at = now
                self.world.assign_ip(pod, node.name)
                pod.pending_reason = ""
                pod.start_due = now + self.world.timings.pod_start_delay
                self.world.emit(
                    EventKind.POD_SCHEDULED,
                    "pod",
                    pod.name,
                    node=node.name,
                    reason="default-scheduler",
                    detail=f"ip={pod.ip}" if self.world.addresses is not None else "",
                )

    def _pick_node(self, deployment: SimDeployment) -> SimNode | None:
        candidates = [node for node in self.world.nodes.values() if node.schedulable()]
        if not candidates:
            return None
        load = {node.name: 0 for node in candidates}
        for pod in deployment.active_pods():
            if pod.node in load:
                load[pod.node] += 1
        return min(candidates, key=lambda node: (load[node.name], node.name))

    def _unschedulable_reason(self) -> str:
        nodes = list(self.world.nodes.values())
        not_ready = sum(1 for n in nodes if n.ready != "True")
        tainted = sum(1 for n in nodes if n.ready == "True" and n.taints)
        cordoned = sum(1 for n in nodes if n.ready == "True" and not n.taints and n.unschedulable)
        parts = []
        if not_ready:
            parts.append(f"{not_ready} node(s) had untolerated taint {{node.kubernetes.io/unreachable: }}")
        if tainted:
            parts.append(f"{tainted} node(s) had untolerated taint")
        if cordoned:
            parts.append(f"{cordoned} node(s) were unschedulable")
        return f"0/{len(nodes)} nodes are available: " + ", ".join(parts)

    # --- node lifecycle and taint manager -------------------------------------------

    def zone_state(self) -> str:
        """The single zone's state, as upstream ComputeZoneState."""
        nodes = list(self.world.nodes.values())
        not_ready = sum(1 for n in nodes if n.ready != "True")
        ready = len(nodes) - not_ready
        if ready == 0 and not_ready > 0:
            return ZONE_FULL
        if not_ready > PARTIAL_DISRUPTION_MIN_NOT_READY and not_ready / len(nodes) >= UNHEALTHY_ZONE_THRESHOLD:
            return ZONE_PARTIAL
        return ZONE_NORMAL

    def node_lifecycle(self, now: float) -> None:
        timings = self.world.timings
        nodes = sorted(self.world.nodes.values(), key=lambda n: n.name)
        # The NoSchedule condition taint follows the Ready condition at once (it is watch
        # driven upstream); the NoExecute one only at the next monitor pass.
        for node in nodes:
            if node.ready == "True" and TAINT_UNREACHABLE_NO_SCHEDULE in node.taints:
                self._untaint(node, TAINT_UNREACHABLE_NO_SCHEDULE, reason="NodeReady")
        if now >= self.next_monitor:
            self.next_monitor = now + timings.node_monitor_period
            for node in nodes:
                silent_for = now - node.last_heartbeat
                if node.ready == "True" and silent_for > timings.node_monitor_grace_period:
                    self._mark_unknown(node, now, silent_for)
                elif node.ready == "True" and TAINT_UNREACHABLE_NO_EXECUTE in node.taints:
                    self._untaint(node, TAINT_UNREACHABLE_NO_EXECUTE, reason="NodeReady")
        zone = self.zone_state()
        if zone == ZONE_FULL:
            for node in nodes:
                if TAINT_UNREACHABLE_NO_EXECUTE in node.taints:
                    self._untaint(node, TAINT_UNREACHABLE_NO_EXECUTE, reason="FullDisruption")
            return
        if zone == ZONE_PARTIAL:
            return  # small cluster: the tainting rate drops to 0
        rate = timings.node_eviction_rate
        for node in nodes:
            if node.ready == "True" or TAINT_UNREACHABLE_NO_EXECUTE in node.taints:
                continue
            if now < self.next_taint_allowed or rate <= 0:
                break
            self.next_taint_allowed = now + 1.0 / rate
            self._taint(node, TAINT_UNREACHABLE_NO_EXECUTE, reason="NodeLifecycleController")
            node.no_execute_since = now
            for pod in self.world.pods_on(node.name):
                seconds = self.world.deployments[pod.deployment].spec.toleration_seconds
                if seconds is not None and not pod.terminating:
                    pod.eviction_due = now + seconds

    def _mark_unknown(self, node: SimNode, now: float, silent_for: float) -> None:
        node.ready = "Unknown"
        self.world.emit(
            EventKind.NODE_NOT_READY,
            "node",
            node.name,
            node=node.name,
            reason="NodeStatusUnknown",
            detail=f"status=Unknown lastHeartbeat={silent_for:.1f}s",
        )
        self._taint(node, TAINT_UNREACHABLE_NO_SCHEDULE, reason="NodeLifecycleController")
        for pod in self.world.pods_on(node.name):
            self.world.mark_not_ready(pod, now, reason="NodeStatusUnknown")

    def _taint(self, node: SimNode, taint: str, reason: str) -> None:
        if taint in node.taints:
            return
        node.taints.append(taint)
        self.world.emit(EventKind.NODE_TAINTED, "node", node.name, node=node.name, reason=reason, detail=taint)

    def _untaint(self, node: SimNode, taint: str, reason: str) -> None:
        if taint not in node.taints:
            return
        node.taints.remove(taint)
        self.world.emit(EventKind.NODE_UNTAINTED, "node", node.name, node=node.name, reason=reason, detail=taint)
        if taint == TAINT_UNREACHABLE_NO_EXECUTE:
            node.no_execute_since = None
            # The taint eviction controller: no NoExecute taint left, so every pending
            # eviction of the node's pods is cancelled (handleNodeUpdate, with the event
            # "Cancelling deletion of Pod" for each one that was scheduled).
            for pod in self.world.pods_on(node.name):
                if pod.eviction_due is None:
                    continue
                pod.eviction_due = None
                self.world.emit(
                    EventKind.POD_EVICTION_CANCELLED,
                    "pod",
                    pod.name,
                    node=node.name,
                    reason="TaintManagerEviction",
                    detail=f"taint={taint} cause={reason}",
                )

    def taint_manager(self, now: float) -> None:
        for pod in self.world.all_pods():
            if pod.eviction_due is None or now < pod.eviction_due or pod.terminating:
                continue
            pod.eviction_due = None
            deployment = self.world.deployments[pod.deployment]
            self.world.emit(
                EventKind.POD_EVICTED,
                "pod",
                pod.name,
                node=pod.node or "",
                reason="TaintManagerEviction",
                detail=f"taint={TAINT_UNREACHABLE_NO_EXECUTE} tolerationSeconds={deployment.spec.toleration_seconds}",
            )
            self.world.delete_pod(
                pod, float(deployment.spec.termination_grace_period_seconds), reason="TaintManagerEviction", now=now
            )

    # --- drain ----------------------------------------------------------------------

    def drains(self, now: float) -> None:
        for drain in self.world.drains.values():
            if drain.finished or now < drain.next_attempt:
                continue
            remaining = [pod for pod in self.world.pods_on(drain.node) if not pod.terminating]
            if not remaining:
                if not self.world.pods_on(drain.node):
                    drain.finished = True
                continue
            blocked = False
            for pod in sorted(remaining, key=lambda p: p.name):
                if not self.eviction_allowed(pod):
                    blocked = True
                    continue
                deployment = self.world.deployments[pod.deployment]
                grace = drain.grace if drain.grace is not None else float(deployment.spec.termination_grace_period_seconds)
                self.world.emit(
                    EventKind.POD_EVICTED,
                    "pod",
                    pod.name,
                    node=pod.node or "",
                    reason="drain",
                    detail=f"fault={drain.fault_id} gracePeriodSeconds={grace:g}",
                )
                self.world.delete_pod(pod, grace, reason="drain", now=now)
            if blocked:
                if now >= drain.deadline:
                    drain.finished = True  # kubectl drain gives up; the node stays cordoned
                else:
                    drain.next_attempt = now + self.world.timings.drain_retry_interval

    def eviction_allowed(self, pod: SimPod) -> bool:
        """The eviction API's answer under the workload's PodDisruptionBudget."""
        deployment = self.world.deployments[pod.deployment]
        pdb = deployment.spec.pod_disruption_budget
        if pdb is None:
            return True
        if not pod.ever_started:
            # The eviction API skips the budget for pods that are still Pending.
            return True
        healthy = sum(1 for p in deployment.pods.values() if p.ready and not p.terminating)
        needed = desired_healthy(pdb, deployment.desired)
        if not (pod.ready and not pod.terminating):
            # unhealthyPodEvictionPolicy IfHealthyBudget (the default).
            return healthy >= needed
        return healthy - needed >= 1

    def start_drain(self, drain: Drain, now: float) -> None:
        node = self.world.nodes[drain.node]
        if not node.unschedulable:
            node.unschedulable = True
            self.world.emit(EventKind.NODE_CORDONED, "node", node.name, node=node.name, reason="drain")
        self.world.drains[drain.node] = drain
        self.drains(now)

    def uncordon(self, node: SimNode) -> None:
        drain = self.world.drains.pop(node.name, None)
        if drain is not None:
            drain.finished = True
        if node.unschedulable:
            node.unschedulable = False
            self.world.emit(EventKind.NODE_UNCORDONED, "node", node.name, node=node.name, reason="restore")

    # --- endpoints ------------------------------------------------------------------

    def endpoints(self, now: float) -> None:
        delay = self.world.timings.endpoint_propagation_delay
        for deployment in self.world.deployments.values():
            target = {
                pod.name: (pod.address, pod.node or "")
                for pod in deployment.pods.values()
                if pod.ready and not pod.terminating
            }
            if target != deployment.endpoint_target:
                deployment.endpoint_target = target
                deployment.publish_queue.append((now + delay, dict(target)))
            changed = False
            while deployment.publish_queue and deployment.publish_queue[0][0] <= now:
                _, snapshot = deployment.publish_queue.popleft()
                self._announce(deployment, snapshot)
                changed = True
            blackhole = self.blackhole_of(deployment)
            if changed or blackhole != deployment.blackhole:
                deployment.blackhole = blackhole
                self.publish(deployment, False)

    def refresh_blackholes(self) -> None:
        """Push blackhole changes at once and wait until each proxy applied them."""
        for deployment in self.world.deployments.values():
            blackhole = self.blackhole_of(deployment)
            if blackhole != deployment.blackhole:
                deployment.blackhole = blackhole
                self.publish(deployment, True)

    def blackhole_of(self, deployment: SimDeployment) -> frozenset[tuple[str, int]]:
        return frozenset(
            pod.address
            for pod in deployment.pods.values()
            if pod.node is not None and self.world.nodes[pod.node].state != NODE_UP
        )

    def _announce(self, deployment: SimDeployment, snapshot: dict[str, Endpoint]) -> None:
        before = deployment.published
        # Removals first: a pod replaced in one sync leaves before its successor joins.
        for kind, gone_from, now_in in (
            (EventKind.ENDPOINT_REMOVED, snapshot, before),
            (EventKind.ENDPOINT_ADDED, before, snapshot),
        ):
            for name in sorted(set(now_in) - set(gone_from)):
                (host, port), node = now_in[name]
                self.world.emit(
                    kind, "endpoint", name, node=node, reason=deployment.name, detail=f"address={host}:{port}"
                )
        deployment.published = snapshot
