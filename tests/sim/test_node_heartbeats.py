"""Nodes whose kubelet posts status again are Ready again (issue 11, part 3).

Upstream, the node-lifecycle controller sets Ready=Unknown when a node's heartbeat is
older than nodeMonitorGracePeriod, and the kubelet's next status sync posts Ready=True
again; with a grace period shorter than the heartbeat every node flaps. These tests run
a real sim cluster in that regime (heartbeat 1.5 s, grace 0.6 s: the ratio of the
issue's 10 s / 4 s) and in the normal one, and read what events.csv would say.
"""

from __future__ import annotations

from chaoslab.cluster.base import ClusterEvent
from chaoslab.spec import NodeCrashFault, NodeHangFault, NodeRestoreFault, SimTimings, TargetSpec

from tests.sim.helpers import FAST_TIMINGS, EventRecorder, poll_until, workload

NO_EXECUTE = "node.kubernetes.io/unreachable:NoExecute"
NO_SCHEDULE = "node.kubernetes.io/unreachable:NoSchedule"

# Grace shorter than the heartbeat: 0.4 x the heartbeat, as 4 s against the default 10 s.
FLAPPING = FAST_TIMINGS.model_copy(
    update={"node_heartbeat_period": 1.5, "node_monitor_grace_period": 0.6, "node_monitor_period": 0.1}
)


def _node_story(events: list[ClusterEvent], node: str) -> list[str]:
    """The node's Ready transitions in order, as `kind:reason`."""
    return [
        f"{e.kind.value}:{e.reason}"
        for e in events
        if e.object == "node" and e.name == node and e.kind.value in {"node_ready", "node_not_ready"}
    ]


def _flaps(recorder: EventRecorder, node: str) -> int:
    story = _node_story(recorder.pull(), node)
    return sum(1 for before, after in zip(story, story[1:]) if before.startswith("node_not_ready") and after == "node_ready:KubeletReady")


def test_a_node_whose_heartbeats_resume_is_ready_again_and_flaps(make_cluster):
    cluster = make_cluster(nodes=3, timings=FLAPPING)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=3))
    cluster.wait_ready(deployment, timeout=60)

    pods = [p.name for p in cluster.pods(deployment)]

    def restored(pod: str) -> bool:
        return any(e.name == pod and (e.kind.value, e.reason) == ("pod_ready", "KubeletStatusSync") for e in recorder.pull())

    poll_until(
        lambda: all(_flaps(recorder, f"node-{i}") >= 2 for i in (1, 2, 3)) and all(restored(pod) for pod in pods),
        60,
        "every node flapped twice and every pod was put back to Ready by its kubelet",
    )
    events = recorder.pull()
    for node in ("node-1", "node-2", "node-3"):
        story = _node_story(events, node)
        assert story[0] == "node_ready:NodeRegistered"
        # Strictly alternating: Unknown at a monitor pass, Ready at the next heartbeat.
        assert all(
            (a.startswith("node_not_ready") and b.startswith("node_ready"))
            or (a.startswith("node_ready") and b.startswith("node_not_ready"))
            for a, b in zip(story, story[1:])
        ), story
        assert {s for s in story[1:] if s.startswith("node_not_ready")} == {"node_not_ready:NodeStatusUnknown"}
        # The condition taint follows each transition.
        taints = [
            (e.kind.value, e.reason)
            for e in events
            if e.name == node and e.kind.value in {"node_tainted", "node_untainted"} and e.detail == NO_SCHEDULE
        ]
        assert ("node_tainted", "NodeLifecycleController") in taints and ("node_untainted", "NodeReady") in taints
    # Every node Unknown at once is a full disruption: no NoExecute taint, nothing evicted.
    assert not [e for e in events if e.kind.value == "node_tainted" and e.detail == NO_EXECUTE]
    assert not [e for e in events if e.kind.value == "pod_evicted"]
    # Pods marked NotReady by the controller come back when the kubelet syncs their status.
    for pod in pods:
        story = [(e.kind.value, e.reason) for e in events if e.name == pod and e.kind.value in {"pod_ready", "pod_not_ready"}]
        restored_at = story.index(("pod_ready", "KubeletStatusSync"))
        assert story[restored_at - 1] == ("pod_not_ready", "NodeStatusUnknown"), story
    # And between two flaps the whole cluster is Ready again, with every pod serving.
    poll_until(
        lambda: all(n.ready == "True" and not n.taints for n in cluster.nodes())
        and len(cluster.endpoints(deployment)) == 3,
        30,
        "all nodes Ready and untainted, three endpoints",
        interval=0.01,
    )


def test_a_crashed_node_pod_is_replaced_while_the_other_nodes_flap(make_cluster, rng):
    """The case of issue 11: nodes flapping around a crash. When the others are Ready,
    the zone is back to Normal, the crashed node is tainted NoExecute and its pod goes."""
    timings = FLAPPING.model_copy(update={"node_heartbeat_period": 3.0, "node_monitor_grace_period": 2.0})
    cluster = make_cluster(nodes=3, timings=timings)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=3, toleration_seconds=1))
    cluster.wait_ready(deployment, timeout=60)
    (lost,) = [p.name for p in cluster.pods(deployment) if p.node == "node-3"]

    cluster.inject(deployment, NodeCrashFault(action="node-crash", at=0, target=TargetSpec(name="node-3")), "f1", rng)

    poll_until(lambda: recorder.of("pod_evicted", lost), 90, "the crashed node's pod evicted")
    (evicted,) = recorder.of("pod_evicted", lost)
    assert evicted.reason == "TaintManagerEviction"
    tainted = [e for e in recorder.of("node_tainted", "node-3") if e.detail == NO_EXECUTE]
    assert tainted and tainted[0].ts < evicted.ts

    def replacement_ready() -> bool:
        events = recorder.pull()
        created = [e.name for e in events if e.kind.value == "pod_created" and e.ts > evicted.ts]
        return any(
            e.kind.value == "pod_ready" and e.name in created and e.node in {"node-1", "node-2"} for e in events
        )

    poll_until(replacement_ready, 90, "a replacement pod Ready on a surviving node")
    assert _node_story(recorder.pull(), "node-3")[-1].startswith("node_not_ready")  # the crashed one never returns


def test_pending_evictions_are_cancelled_when_the_node_is_ready_again(make_cluster, rng):
    cluster = make_cluster(nodes=3)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=3, toleration_seconds=300))
    cluster.wait_ready(deployment, timeout=30)
    (hung,) = [p.name for p in cluster.pods(deployment) if p.node == "node-1"]

    cluster.inject(deployment, NodeHangFault(action="node-hang", at=0, target=TargetSpec(name="node-1")), "f1", rng)
    poll_until(
        lambda: [e for e in recorder.of("node_tainted", "node-1") if e.detail == NO_EXECUTE], 30, "NoExecute taint"
    )
    cluster.inject(deployment, NodeRestoreFault(action="node-restore", at=0), "f2", rng)

    poll_until(lambda: recorder.of("pod_eviction_cancelled", hung), 30, "the hung pod's eviction cancelled")
    (cancelled,) = recorder.of("pod_eviction_cancelled", hung)
    assert cancelled.reason == "TaintManagerEviction" and cancelled.node == "node-1"
    assert NO_EXECUTE in cancelled.detail and "NodeReady" in cancelled.detail
    untainted = [e for e in recorder.of("node_untainted", "node-1") if e.detail == NO_EXECUTE]
    assert untainted and untainted[0].ts <= cancelled.ts
    (ready,) = [e for e in recorder.of("node_ready", "node-1") if e.reason == "KubeletReady"]
    assert ready.ts <= untainted[0].ts
    poll_until(lambda: hung in {p.name for p in cluster.pods(deployment) if p.ready}, 30, "the resumed pod Ready")
    assert not recorder.of("pod_evicted")
    assert all(NO_EXECUTE not in n.taints for n in cluster.nodes())
    # No eviction comes later either: the pod stays, not terminating.
    assert {p.name: p.phase for p in cluster.pods(deployment)}[hung] == "Running"
