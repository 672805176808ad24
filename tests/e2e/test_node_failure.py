"""A lost node on the real control plane: node-lifecycle controller, taint manager, scheduler.

The fault freezes the node's KWOK process (its kubelet) through the backend's `command`
node provider: the node's Lease stops being renewed, the real node-lifecycle controller
marks it Unknown after --node-monitor-grace-period and taints it unreachable, the taint
manager evicts its pods once their tolerationSeconds ran out, and the scheduler places
the ReplicaSet's replacements on the other nodes.
"""

from __future__ import annotations

import math
import random
import time

import pytest
from pydantic import TypeAdapter

from chaoslab.analysis import capacity_recovered, ready_endpoints
from chaoslab.cluster.base import EventKind
from chaoslab.spec import FaultSpec
from tests.e2e.conftest import EventLog, kwok_state, pods_by_node, workload
from tests.e2e.localcluster import State

pytestmark = pytest.mark.e2e

FAULT = TypeAdapter(FaultSpec)
# The pods' tolerationSeconds for node.kubernetes.io/unreachable (upstream default 300).
TOLERATION_SECONDS = 5
UNREACHABLE = "node.kubernetes.io/unreachable:NoExecute"
# API timestamps have whole-second resolution: allow that much on each compared time.
API_SLACK_SECONDS = 1.5


def test_node_crash_taints_evicts_after_toleration_and_reschedules(local: State, open_kube) -> None:
    cluster = open_kube()
    log = EventLog(cluster)
    deployment = cluster.deploy(workload(replicas=4, tolerationSeconds=TOLERATION_SECONDS))
    cluster.wait_ready(deployment, timeout=120)
    log.wait_for(lambda log: len(log.ready_endpoints()) == 4, "four ready endpoints")
    measure_start = time.time()

    fault = FAULT.validate_python({"at": 0, "action": "node-crash", "target": {"count": 1}})
    placement = pods_by_node(cluster, deployment)
    injection = cluster.inject(deployment, fault, "f0", random.Random(3))
    (node,) = injection.targets
    assert injection.restorable and injection.detail == "provider=command"
    assert kwok_state(local, node) == "paused"  # its kubelet is frozen
    victims = set(placement[node])  # the candidates are nodes hosting the workload

    def moved(log: EventLog) -> bool:
        evicted = {e.name for e in log.of(EventKind.POD_EVICTED)}
        return victims <= evicted and len(log.ready_endpoints() - victims) == 4

    log.wait_for(moved, f"the pods of {node} evicted and replaced elsewhere")
    window_end = time.time()

    grace = local.settings.node_monitor_grace_period_s
    lease_renewal = local.settings.node_lease_seconds / 4
    unknown = log.of(EventKind.NODE_NOT_READY, node)
    assert unknown and unknown[0].detail == "status=Unknown"  # no heartbeat: Unknown, not False
    # The last Lease renewal came up to one renewal interval before the freeze.
    assert unknown[0].ts - injection.ts >= grace - lease_renewal - API_SLACK_SECONDS
    (tainted,) = [e for e in log.of(EventKind.NODE_TAINTED, node) if e.detail == UNREACHABLE]
    for victim in victims:
        (evicted,) = log.of(EventKind.POD_EVICTED, victim)
        # The taint manager waits out the pod's tolerationSeconds, then evicts.
        assert evicted.ts - tainted.ts >= TOLERATION_SECONDS - API_SLACK_SECONDS, (victim, evicted, tainted)
        assert evicted.reason in ("TaintManagerEviction", "DeletionByTaintManager")
        assert victim not in log.ready_endpoints()
    # Replacements: created by the ReplicaSet, bound by the scheduler to the other nodes.
    replacements = [e for e in log.of(EventKind.POD_SCHEDULED) if e.ts >= tainted.ts - API_SLACK_SECONDS]
    assert len(replacements) >= len(victims)
    assert all(e.node != node and e.node in local.workers for e in replacements)

    endpoints = ready_endpoints(log.frame(), measure_start=measure_start, desired_replicas=4)
    recovered = capacity_recovered(endpoints, injection.ts, window_end)
    # Capacity came back, and not before the grace period and the toleration had passed.
    assert math.isfinite(recovered)
    assert recovered >= grace - lease_renewal + TOLERATION_SECONDS - 2 * API_SLACK_SECONDS

    # Restore: the kubelet runs again, the node is Ready and untainted, and the evicted
    # pods that were stuck Terminating on it are finally deleted.
    cluster.restore(injection)
    assert kwok_state(local, node) == "running"

    def back(log: EventLog) -> bool:
        ready = any(e.ts >= window_end for e in log.of(EventKind.NODE_READY, node))
        untainted = any(e.detail == UNREACHABLE for e in log.of(EventKind.NODE_UNTAINTED, node))
        deleted = {e.name for e in log.of(EventKind.POD_DELETED)}
        return ready and untainted and victims <= deleted

    log.wait_for(back, f"{node} Ready again and its evicted pods deleted")
    assert log.of(EventKind.FAULT_RESTORED, "f0")
    cluster.teardown(deployment)


def test_node_hang_with_restore_after_comes_back_by_itself(local: State, open_kube) -> None:
    """node-hang with restoreAfter: the node goes Unknown, then the backend's timer brings
    it back before any pod's (default, 300 s) toleration ran out: nothing is evicted."""
    cluster = open_kube()
    log = EventLog(cluster)
    deployment = cluster.deploy(workload(replicas=2, tolerationSeconds=300))
    cluster.wait_ready(deployment, timeout=120)
    grace = local.settings.node_monitor_grace_period_s
    fault = FAULT.validate_python({"at": 0, "action": "node-hang", "target": {"count": 1}, "restoreAfter": f"{grace + 12}s"})
    injection = cluster.inject(deployment, fault, "f0", random.Random(5))
    (node,) = injection.targets

    def recovered(log: EventLog) -> bool:
        went = [e for e in log.of(EventKind.NODE_NOT_READY, node) if e.detail == "status=Unknown"]
        came = [e for e in log.of(EventKind.NODE_READY, node) if went and e.ts > went[0].ts]
        return bool(came) and bool(log.of(EventKind.FAULT_RESTORED, "f0"))

    log.wait_for(recovered, f"{node} Unknown, then Ready again after restoreAfter")
    assert not log.of(EventKind.POD_EVICTED)
    # The pods on the node were marked not ready while it was Unknown, and are ready again.
    log.wait_for(lambda log: len(log.ready_endpoints()) == 2, "both endpoints ready again")
    assert kwok_state(local, node) == "running"
    cluster.teardown(deployment)
