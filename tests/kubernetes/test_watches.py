"""Watches into the event vocabulary, with API timestamps and lossless 410 Gone resume."""

from __future__ import annotations

import random

from chaoslab.cluster.base import EventKind
from chaoslab.cluster.kube import convert
from chaoslab.cluster.kube.records import WatchExpired
from chaoslab.cluster.kube.watches import (
    Causes,
    EventSink,
    EventTracker,
    NodeTracker,
    PodTracker,
    ResourceWatcher,
    event_time,
)
from tests.kubernetes.conftest import EventLog, workload
from tests.kubernetes.fake import FakeKubeApi, node_json
from tests.kubernetes.test_faults import fault

T0 = 1795000000.0  # 2026-11-18T...: a whole second, like every API timestamp


def iso(ts: float) -> str:
    from tests.kubernetes.fake import rfc3339

    return rfc3339(ts)


def pod_json(**status: object) -> dict:
    """A pod of the workload as `kubectl get pod -o json` shows it, status overridable."""
    base = {
        "metadata": {
            "name": "web-7d9f8c6b5-abcde",
            "namespace": "chaoslab-web-a1b2c3",
            "uid": "u1",
            "creationTimestamp": iso(T0),
            "labels": {"app.kubernetes.io/name": "web"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f8c6b5"}],
            "resourceVersion": "10",
        },
        "spec": {"nodeName": "minikube-m02", "containers": [{"name": "app", "image": "python:3.12-slim"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.1.5",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": iso(T0)},
                {"type": "Ready", "status": "True", "lastTransitionTime": iso(T0 + 2)},
            ],
            "containerStatuses": [
                {"name": "app", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": iso(T0 + 1)}}}
            ],
        },
    }
    base["status"].update(status)
    return base


def test_event_time_keeps_the_more_precise_of_api_and_observed_time() -> None:
    assert event_time(None, T0 + 0.4) == T0 + 0.4
    assert event_time(T0, T0 + 0.4) == T0 + 0.4  # seen within the API's whole second
    assert event_time(T0, T0 + 30.0) == T0 + 1.0  # seen late (a relist): the API time bounds it
    assert event_time(T0, T0 - 0.2) == T0  # our clock behind the API server's


def test_a_container_restart_tells_how_it_died_and_when_it_came_back() -> None:
    tracker = PodTracker(Causes())
    running = convert.pod_from_json(pod_json())
    tracker.sync([running], T0 + 3, baseline=True)
    restarted = convert.pod_from_json(
        pod_json(
            containerStatuses=[
                {
                    "name": "app",
                    "ready": False,
                    "restartCount": 1,
                    "state": {"running": {"startedAt": iso(T0 + 20)}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": iso(T0 + 19)}},
                }
            ],
            conditions=[{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": iso(T0 + 19)}],
        )
    )
    events = tracker.apply("MODIFIED", restarted, T0 + 20.3)
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.CONTAINER_DIED, EventKind.CONTAINER_RESTARTED, EventKind.CONTAINER_STARTED, EventKind.POD_NOT_READY]
    died = events[0]
    assert died.ts == T0 + 20  # finishedAt (19 s) seen 1.3 s later: bounded by its second
    assert "exitCode=137" in died.detail and died.node == "minikube-m02"
    assert events[1].detail == "container=app restartCount=1"
    assert events[3].reason == "ContainersNotReady"


def test_crash_loop_back_off_reports_the_wait() -> None:
    tracker = PodTracker(Causes())
    tracker.sync([convert.pod_from_json(pod_json())], T0, baseline=True)
    waiting = convert.pod_from_json(
        pod_json(
            containerStatuses=[
                {
                    "name": "app",
                    "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container=app pod=web-7d9f8c6b5-abcde_ns(u1)"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": iso(T0 + 5)}},
                }
            ]
        )
    )
    events = tracker.apply("MODIFIED", waiting, T0 + 5.5)
    back_off = [e for e in events if e.kind is EventKind.BACK_OFF]
    assert len(back_off) == 1 and back_off[0].detail.startswith("backoff=20 ")


def test_graceful_deletion_and_eviction_are_dated_from_the_api() -> None:
    causes = Causes()
    tracker = PodTracker(causes)
    tracker.sync([convert.pod_from_json(pod_json())], T0, baseline=True)
    evicting = pod_json(
        conditions=[
            {"type": "Ready", "status": "True", "lastTransitionTime": iso(T0 + 2)},
            {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager", "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": iso(T0 + 60)},
        ]
    )
    evicting["metadata"]["deletionTimestamp"] = iso(T0 + 90)
    evicting["metadata"]["deletionGracePeriodSeconds"] = 30
    events = tracker.apply("MODIFIED", convert.pod_from_json(evicting), T0 + 60.2)
    assert [e.kind for e in events] == [EventKind.POD_EVICTED, EventKind.POD_TERMINATING]
    assert events[0].reason == "DeletionByTaintManager" and events[0].ts == T0 + 60.2
    # deletionTimestamp is the end of the grace period: the deletion began 30 s earlier.
    assert events[1].ts == T0 + 60.2 and events[1].detail == "gracePeriodSeconds=30"
    assert [e.kind for e in tracker.apply("DELETED", convert.pod_from_json(evicting), T0 + 70)] == [EventKind.POD_DELETED]


def test_node_taints_and_readiness() -> None:
    tracker = NodeTracker(Causes())
    tracker.sync([convert.node_from_json(node_json("minikube-m02", "192.168.49.3"))], T0, baseline=True)
    lost = node_json("minikube-m02", "192.168.49.3")
    lost["status"]["conditions"][1].update(status="Unknown", reason="NodeStatusUnknown", lastTransitionTime=iso(T0 + 50))
    lost["spec"]["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": iso(T0 + 50)}]
    events = tracker.apply("MODIFIED", convert.node_from_json(lost), T0 + 50.5)
    assert [(e.kind, e.ts, e.detail) for e in events] == [
        (EventKind.NODE_NOT_READY, T0 + 50.5, "status=Unknown"),
        (EventKind.NODE_TAINTED, T0 + 50.5, "node.kubernetes.io/unreachable:NoExecute"),
    ]
    assert events[0].reason == "NodeStatusUnknown"


def test_a_watch_that_expires_is_resumed_by_relisting_without_losing_events() -> None:
    api = FakeKubeApi()
    api.create_namespace("ns", {})
    sink = EventSink()
    causes = Causes()
    watcher = ResourceWatcher(api, "pods", "ns", PodTracker(causes), sink, timeout_seconds=1)
    watcher.relist()  # baseline: an empty namespace
    api.create_object("ns", {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "x"}]}}}})
    watcher.step()  # one watch session: sees both pods come up
    created = [e for e in sink.drain() if e.kind is EventKind.POD_READY]
    assert len(created) == 2
    victim = sorted(api._items("pods", "ns"), key=lambda p: p["metadata"]["name"])[0]["metadata"]["name"]

    # While the watcher is away, a pod is replaced and the history is compacted.
    api.delete_pod("ns", victim, 0)
    api.compact()
    try:
        watcher.step()
    except WatchExpired:
        watcher.resource_version = None  # what run() does on 410
    else:
        raise AssertionError("resuming from a compacted resourceVersion must fail with 410")
    watcher.step()  # the relist
    events = sink.drain()
    assert watcher.relists == 2
    assert [e.kind for e in events if e.name == victim] == [EventKind.POD_DELETED]
    replacement = [e for e in events if e.name != victim]
    assert [e.kind for e in replacement] == [EventKind.POD_CREATED, EventKind.POD_SCHEDULED, EventKind.CONTAINER_STARTED, EventKind.POD_READY]
    # and on it goes from the list's resourceVersion
    api.delete_pod("ns", replacement[0].name, 0)
    watcher.step()
    assert [e.kind for e in sink.drain() if e.name == replacement[0].name] == [EventKind.POD_NOT_READY, EventKind.POD_TERMINATING, EventKind.POD_DELETED]


def test_the_running_backend_resumes_after_410_on_every_watch(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=10)
    log = EventLog(cluster)
    log.wait_for(lambda _: len(log.of(EventKind.ENDPOINT_ADDED)) == 2, "2 endpoints")
    relists_before = {w.kind: w.relists for w in cluster._watchers}
    with api.cond:  # atomically: a change nobody has watched yet, then a compaction
        injection = cluster.inject(deployment, fault(action="pod-delete"), "f0", random.Random(0))
        api.compact()
    victim = injection.targets[0]
    log.wait_for(
        lambda _: log.of(EventKind.POD_DELETED, victim)
        and log.of(EventKind.ENDPOINT_REMOVED, victim)
        and len(log.of(EventKind.ENDPOINT_ADDED)) == 3
        and len(log.of(EventKind.POD_READY)) == 3,
        "the deletion and the replacement, after the 410",
    )
    assert all(w.relists > relists_before[w.kind] for w in cluster._watchers if w.kind in ("pods", "endpointslices"))
    # Nothing is told twice.
    rows = [(e.kind, e.name) for e in log.events if e.kind is not EventKind.FAULT_INJECTED]
    assert len(rows) == len(set(rows))


def _taint_manager_event(name: str, message: str) -> object:
    return convert.event_from_json({
        "metadata": {"name": name, "namespace": "chaoslab-web-1", "resourceVersion": "7"},
        "reason": "TaintManagerEviction", "message": message, "type": "Normal",
        "involvedObject": {"kind": "Pod", "name": "web-1"}, "lastTimestamp": iso(T0 + 20),
    })


def test_a_cancelled_taint_manager_eviction_is_not_an_eviction() -> None:
    """Seen on real nodes: a node back before the pod's toleration ran out gets the taint
    manager's "Cancelling deletion of Pod ..." under the eviction's reason."""
    tracker = EventTracker(Causes())
    cancelled = _taint_manager_event("e1", "Cancelling deletion of Pod chaoslab-web-1/web-1")
    assert tracker.apply("ADDED", cancelled, T0 + 20.1) == []
    marked = _taint_manager_event("e2", "Marking for deletion Pod chaoslab-web-1/web-1")
    (evicted,) = tracker.apply("ADDED", marked, T0 + 30.1)
    assert evicted.kind is EventKind.POD_EVICTED and evicted.name == "web-1"
