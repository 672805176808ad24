"""node-drain with a PodDisruptionBudget, through the real Eviction API and disruption controller."""

from __future__ import annotations

import random
import time

import pytest
from kubernetes import client as k8s
from pydantic import TypeAdapter

from chaoslab.analysis import ready_endpoints
from chaoslab.cluster.base import EventKind
from chaoslab.spec import FaultSpec
from tests.e2e.conftest import EventLog, pods_by_node, workload
from tests.e2e.localcluster import State

pytestmark = pytest.mark.e2e

FAULT = TypeAdapter(FaultSpec)


def test_drain_honours_the_pdb_and_moves_every_pod_off_the_node(local: State, open_kube, core: k8s.CoreV1Api) -> None:
    cluster = open_kube()
    log = EventLog(cluster)
    # Four pods on three workers: some worker hosts two of them (pigeonhole), and the
    # budget lets only one be disrupted at a time.
    deployment = cluster.deploy(workload(replicas=4, podDisruptionBudget={"maxUnavailable": 1}))
    cluster.wait_ready(deployment, timeout=120)
    log.wait_for(lambda log: len(log.ready_endpoints()) == 4, "four ready endpoints")
    placement = pods_by_node(cluster, deployment)
    node = max(sorted(placement), key=lambda name: len(placement[name]))
    victims = set(placement[node])
    assert len(victims) >= 2
    measure_start = time.time()

    fault = FAULT.validate_python({"at": 0, "action": "node-drain", "target": {"name": node}, "timeout": "90s"})
    injection = cluster.inject(deployment, fault, "f0", random.Random(0))
    assert injection.targets == (node,) and injection.restorable
    # The first eviction used the budget's one disruption; the Eviction API refused the
    # next one (HTTP 429) until the replacement was Ready: the drain keeps retrying.
    assert injection.detail.startswith("evicted=1 blockedByPDB=")
    assert core.read_node(node).spec.unschedulable

    def drained(log: EventLog) -> bool:
        evicted = {e.name for e in log.of(EventKind.POD_EVICTED)}
        return victims <= evicted and len(log.ready_endpoints() - victims) == 4

    log.wait_for(drained, f"every pod evicted from {node} and replaced")
    window_end = time.time()
    assert log.of(EventKind.NODE_CORDONED, node)
    for victim in victims:
        (evicted,) = log.of(EventKind.POD_EVICTED, victim)
        assert evicted.reason == "drain"
    # Nothing is placed on the cordoned node.
    assert all(e.node != node for e in log.of(EventKind.POD_SCHEDULED) if e.ts >= injection.ts)
    # The budget held: never fewer than 3 of the 4 pods in the Service during the drain.
    endpoints = ready_endpoints(log.frame(), measure_start=measure_start, desired_replicas=4)
    during = endpoints[(endpoints["ts"] >= injection.ts) & (endpoints["ts"] <= window_end)]
    assert during["ready"].min() >= 3, during

    cluster.restore(injection)
    log.wait_for(lambda log: bool(log.of(EventKind.NODE_UNCORDONED, node)), f"{node} uncordoned")
    assert not core.read_node(node).spec.unschedulable
    cluster.teardown(deployment)
