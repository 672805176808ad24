"""Node faults: what clients and controllers see when a node crashes, hangs or is drained."""

from __future__ import annotations

import time

from chaoslab.spec import NodeCrashFault, NodeDrainFault, NodeHangFault, NodeRestoreFault, TargetSpec

from tests.sim.helpers import FAST_TIMINGS, EventRecorder, get, poll_until, workload

NO_EXECUTE = "node.kubernetes.io/unreachable:NoExecute"


def test_node_crash_blackholes_then_evicts_and_reschedules(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=3, toleration_seconds=5))
    cluster.wait_ready(deployment, timeout=30)
    url = cluster.service_url(deployment)

    injection = cluster.inject(
        deployment, NodeCrashFault(action="node-crash", at=0, target=TargetSpec(name="node-2")), "f1", rng
    )
    assert injection.restorable and injection.targets == ("node-2",)
    assert injection.ready_after == 3  # nobody has noticed yet
    crashed = {p.name for p in cluster.pods(deployment) if p.node == "node-2"}

    # Until the controller notices, the dead pod is still routed to: packets vanish.
    outcomes = [get(url, network=cluster.client_network(), timeout=0.3) for _ in range(20)]
    assert "timeout" in outcomes and "refused" not in outcomes and "reset" not in outcomes

    timings = FAST_TIMINGS
    budget = timings.node_monitor_grace_period + timings.node_monitor_period + 5 + timings.pod_start_delay + 1 + 5
    poll_until(
        lambda: len([p for p in cluster.pods(deployment) if p.ready and p.node != "node-2"]) == 3
        and len(cluster.endpoints(deployment)) == 3,
        budget,
        "three ready pods on surviving nodes",
    )
    crash_ts = injection.ts
    not_ready = recorder.of("node_not_ready", "node-2")[0]
    # The last heartbeat came up to one heartbeat period before the crash.
    earliest = timings.node_monitor_grace_period - timings.node_heartbeat_period
    assert earliest <= not_ready.ts - crash_ts < timings.node_monitor_grace_period + 2
    assert any(e.detail == NO_EXECUTE for e in recorder.of("node_tainted", "node-2"))
    (evicted,) = recorder.of("pod_evicted")
    assert evicted.name in crashed and evicted.reason == "TaintManagerEviction"
    tainted = [e for e in recorder.of("node_tainted", "node-2") if e.detail == NO_EXECUTE][0]
    assert 5 <= evicted.ts - tainted.ts < 6.5
    assert recorder.of("endpoint_removed", evicted.name)[0].ts < evicted.ts  # MarkPodsNotReady first
    assert all(get(url, network=cluster.client_network(), timeout=2).startswith("ok:") for _ in range(10))

    cluster.restore(injection)
    poll_until(lambda: recorder.of("pod_deleted", evicted.name), 10, "evicted pod finally deleted")
    assert cluster.nodes()[1].ready == "True"
    assert recorder.of("fault_restored", "f1")


def test_node_hang_makes_clients_time_out_until_endpoints_drop(make_cluster, rng):
    cluster = make_cluster(nodes=2)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=30)
    url = cluster.service_url(deployment)
    (hung_pod,) = [p.name for p in cluster.pods(deployment) if p.node == "node-1"]

    cluster.inject(deployment, NodeHangFault(action="node-hang", at=0, target=TargetSpec(name="node-1")), "f1", rng)
    (healthy_pod,) = [p.name for p in cluster.pods(deployment) if p.node == "node-2"]
    outcomes = [get(url, network=cluster.client_network(), timeout=0.3) for _ in range(14)]
    assert "timeout" in outcomes and set(outcomes) <= {"timeout", f"ok:{healthy_pod}"}

    poll_until(lambda: recorder.of("endpoint_removed", hung_pod), 10, "hung pod removed from endpoints")
    assert all(get(url, network=cluster.client_network(), timeout=2).startswith("ok:") for _ in range(14))
    assert recorder.of("pod_not_ready", hung_pod)[0].reason == "NodeStatusUnknown"

    restore = NodeRestoreFault(action="node-restore", at=0)
    injection = cluster.inject(deployment, restore, "f2", rng)
    assert injection.targets == ("node-1",)
    poll_until(lambda: hung_pod in {p.name for p in cluster.pods(deployment) if p.ready}, 10, "resumed pod ready")
    assert recorder.of("fault_restored", "f1")


def test_eviction_halts_when_no_node_is_ready(make_cluster, rng):
    cluster = make_cluster(nodes=2)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=2, toleration_seconds=1))
    cluster.wait_ready(deployment, timeout=30)

    crash_all = NodeCrashFault(action="node-crash", at=0, target=TargetSpec(count=2))
    cluster.inject(deployment, crash_all, "f1", rng)
    poll_until(
        lambda: all(n.ready == "Unknown" for n in cluster.nodes()), 10, "both nodes Unknown"
    )
    # Full disruption: NoExecute taints are lifted and nothing is evicted, however long.
    time.sleep(1 + 2 * FAST_TIMINGS.node_monitor_period + 1)
    assert not recorder.of("pod_evicted")
    assert all(NO_EXECUTE not in n.taints for n in cluster.nodes())
    assert len([p for p in cluster.pods(deployment) if p.phase != "Terminating"]) == 2


def test_drain_respects_the_pod_disruption_budget(make_cluster, rng):
    cluster = make_cluster(nodes=2)
    recorder = EventRecorder(cluster)
    spec = workload(replicas=4, pod_disruption_budget={"minAvailable": 3}, app={"startupSeconds": 0.3})
    deployment = cluster.deploy(spec)
    cluster.wait_ready(deployment, timeout=30)
    on_node_1 = {p.name for p in cluster.pods(deployment) if p.node == "node-1"}
    assert len(on_node_1) == 2

    fault = NodeDrainFault(action="node-drain", at=0, target=TargetSpec(name="node-1"), timeout=60)
    injection = cluster.inject(deployment, fault, "f1", rng)
    assert injection.restorable and recorder.of("node_cordoned", "node-1")

    lowest = 4
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        ready = sum(1 for p in cluster.pods(deployment) if p.ready)
        lowest = min(lowest, ready)
        pods = cluster.pods(deployment)
        if not any(p.node == "node-1" for p in pods) and ready == 4:
            break
        time.sleep(0.02)
    else:
        raise AssertionError(f"drain did not finish: {cluster.pods(deployment)}")
    assert lowest >= 3
    evicted = recorder.of("pod_evicted")
    assert {e.name for e in evicted} == on_node_1 and {e.reason for e in evicted} == {"drain"}
    # The budget forced the evictions apart: the second waited for a replacement to be ready.
    first, second = sorted(e.ts for e in evicted)
    replacement_ready = min(e.ts for e in recorder.of("pod_ready") if e.ts > first)
    assert second >= replacement_ready
    assert not cluster.nodes()[0].schedulable

    cluster.restore(injection)
    assert recorder.of("node_uncordoned", "node-1") and cluster.nodes()[0].schedulable
