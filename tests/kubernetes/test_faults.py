"""Each fault's API calls and node-provider actions on the kubernetes backend (fake API)."""

from __future__ import annotations

import random
import time

import pytest
from pydantic import TypeAdapter

from chaoslab.cluster.base import EventKind
from chaoslab.cluster.kube.cluster import CONTAINER_KILL_SCRIPT
from chaoslab.cluster.kube.records import ExecResult, ExecUnsupported
from chaoslab.errors import EXIT_USAGE, UsageError
from chaoslab.spec import FaultSpec
from tests.kubernetes.conftest import EVENT_DEADLINE_SECONDS, EventLog, workload
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider

FAULT = TypeAdapter(FaultSpec)


def fault(**fields: object) -> FaultSpec:
    return FAULT.validate_python({"at": 1, **fields})


def ready_cluster(make_cluster, spec: dict | None = None, **workload_fields):
    cluster = make_cluster(spec)
    deployment = cluster.deploy(workload(**workload_fields))
    cluster.wait_ready(deployment, timeout=10)
    return cluster, deployment


def test_pod_delete_deletes_chosen_pods_with_the_grace_period(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=4)
    log = EventLog(cluster)
    before = {p.name for p in cluster.pods(deployment)}
    injection = cluster.inject(deployment, fault(action="pod-delete", target={"count": 2}, gracePeriodSeconds=5), "f0", random.Random(1))

    deletes = [c for c in api.calls if c[0] == "delete_pod"]
    assert [(c[2], c[3]) for c in deletes] == [(name, 5) for name in injection.targets]
    assert len(injection.targets) == 2 and set(injection.targets) <= before
    assert injection.detail == "gracePeriodSeconds=5" and not injection.restorable
    assert injection.ready_before == 4
    # The same seed picks the same pods (trials are reproducible).
    assert injection.targets == tuple(sorted(random.Random(1).sample(sorted(before), 2)))
    victim = injection.targets[0]
    log.wait_for(lambda _: log.of(EventKind.POD_DELETED, victim) and len(log.of(EventKind.ENDPOINT_ADDED)) == 6, "replacement endpoints")
    terminating = log.of(EventKind.POD_TERMINATING, victim)[0]
    assert terminating.reason == "pod-delete" and terminating.detail == "gracePeriodSeconds=5"
    assert log.of(EventKind.ENDPOINT_REMOVED, victim)
    injected = log.of(EventKind.FAULT_INJECTED, "f0")[0]
    assert injected.reason == "pod-delete" and victim in injected.detail


def test_pod_delete_force_is_grace_period_zero(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    cluster.inject(deployment, fault(action="pod-delete", force=True), "f0", random.Random(0))
    assert [c[3] for c in api.calls if c[0] == "delete_pod"] == [0]


def test_pod_delete_without_grace_uses_the_pods_own(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    injection = cluster.inject(deployment, fault(action="pod-delete"), "f0", random.Random(0))
    assert [c[3] for c in api.calls if c[0] == "delete_pod"] == [None]
    assert injection.detail == ""


def test_container_kill_execs_kill_in_the_app_container(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    injection = cluster.inject(deployment, fault(action="container-kill"), "f0", random.Random(0))
    (call,) = [c for c in api.calls if c[0] == "exec"]
    _, namespace, pod, container, command = call
    assert (namespace, pod, container) == (deployment.namespace, injection.targets[0], "app")
    assert command == ("/bin/sh", "-c", CONTAINER_KILL_SCRIPT, "container-kill", "KILL")
    assert injection.detail == "signal=SIGKILL pid=7"


def test_container_kill_on_an_image_without_a_shell_is_a_clear_usage_error(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=1, image="gcr.io/distroless/static", port=8080)

    def no_shell(namespace, pod, container, command):
        raise ExecUnsupported('exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown')

    api.exec_handler = no_shell
    with pytest.raises(UsageError) as caught:
        cluster.inject(deployment, fault(action="container-kill"), "f0", random.Random(0))
    assert caught.value.exit_code == EXIT_USAGE
    assert "container-kill is unsupported for image gcr.io/distroless/static" in str(caught.value)
    assert "pod-delete" in str(caught.value)


def test_a_missing_shell_is_refused_once_ready_before_any_fault_fires(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2, image="registry.example/app:2", port=8080)
    cluster.check_faults(deployment, [fault(action="pod-delete")])
    assert not [c for c in api.calls if c[0] == "exec"], "no container-kill: nothing to ask"

    def no_shell(namespace, pod, container, command):
        assert command == ["/bin/sh", "-c", "exit 0"]  # harmless: the check kills nothing
        raise ExecUnsupported('exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown')

    api.exec_handler = no_shell
    with pytest.raises(UsageError, match="container-kill is unsupported for image registry.example/app:2"):
        cluster.check_faults(deployment, [fault(action="pod-delete"), fault(action="container-kill")])
    assert len(cluster.pods(deployment)) == 2 and all(p.ready for p in cluster.pods(deployment))


def test_the_built_in_apps_image_needs_no_shell_check(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=1)
    cluster.check_faults(deployment, [fault(action="container-kill")])
    assert not [c for c in api.calls if c[0] == "exec"]


def test_container_kill_sigkill_to_an_init_process_is_explained(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=1, image="nginx:1.27", port=80)
    api.exec_handler = lambda ns, pod, c, cmd: ExecResult(97, "", "PID 1 is the container's init")
    with pytest.raises(UsageError, match="use signal: SIGTERM"):
        cluster.inject(deployment, fault(action="container-kill"), "f0", random.Random(0))


def test_scale_patches_the_deployment_and_says_so(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    log = EventLog(cluster)
    injection = cluster.inject(deployment, fault(action="scale", replicas=4), "f0", random.Random(0))
    assert ("scale", deployment.namespace, "web", 4) in api.calls
    assert injection.targets == ("web",) and injection.detail == "replicas=4"
    log.wait_for(lambda _: len(log.of(EventKind.ENDPOINT_ADDED)) == 4, "4 endpoints")
    (scaled,) = log.of(EventKind.SCALED)
    assert scaled.object == "deployment" and "replicas=4" in scaled.detail


def test_node_crash_acts_on_a_worker_hosting_pods_and_restore_brings_it_back(
    make_cluster, api: FakeKubeApi, provider: RecordingProvider
) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    log = EventLog(cluster)
    hosting = {p.node for p in cluster.pods(deployment)}
    injection = cluster.inject(deployment, fault(action="node-crash"), "f0", random.Random(0))
    (node,) = injection.targets
    assert node in hosting and node != "minikube"
    assert provider.calls == [("crash", node)]
    assert injection.restorable
    log.wait_for(lambda _: log.of(EventKind.NODE_TAINTED, node), "the unreachable taint")
    assert log.of(EventKind.NODE_NOT_READY, node)[0].detail == "status=Unknown"
    assert log.of(EventKind.NODE_TAINTED, node)[0].detail == "node.kubernetes.io/unreachable:NoExecute"

    cluster.restore(injection)
    cluster.restore(injection)  # idempotent: the engine may restore at teardown again
    assert provider.calls == [("crash", node), ("restore", node)]
    log.wait_for(lambda _: log.of(EventKind.NODE_READY, node) and log.of(EventKind.FAULT_RESTORED, "f0"), "node ready")


def test_node_hang_then_node_restore_fault(make_cluster, provider: RecordingProvider) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    hung = cluster.inject(deployment, fault(action="node-hang"), "f0", random.Random(0))
    assert provider.calls == [("hang", hung.targets[0])]
    restored = cluster.inject(deployment, fault(action="node-restore"), "f1", random.Random(0))
    assert restored.targets == hung.targets and not restored.restorable
    assert provider.calls[-1] == ("restore", hung.targets[0])
    assert cluster.inject(deployment, fault(action="node-restore"), "f2", random.Random(0)).detail == "nothing to restore"


def test_node_crash_restores_itself_after_restore_after(make_cluster, provider: RecordingProvider) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    injection = cluster.inject(deployment, fault(action="node-crash", restoreAfter="200ms"), "f0", random.Random(0))
    deadline = time.monotonic() + EVENT_DEADLINE_SECONDS
    while ("restore", injection.targets[0]) not in provider.calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert provider.calls == [("crash", injection.targets[0]), ("restore", injection.targets[0])]


def test_node_drain_cordons_evicts_through_the_eviction_api_and_uncordons(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    log = EventLog(cluster)
    on_node = {p.node: p.name for p in cluster.pods(deployment)}
    injection = cluster.inject(deployment, fault(action="node-drain", gracePeriodSeconds=3), "f0", random.Random(0))
    (node,) = injection.targets
    mutations = [c for c in api.calls if c[0] in ("cordon", "evict_pod", "delete_pod", "uncordon")]
    assert mutations == [("cordon", node), ("evict_pod", deployment.namespace, on_node[node], 3)]
    assert injection.extra["evicted"] == on_node[node] and injection.extra["blocked"] == ""
    log.wait_for(lambda _: log.of(EventKind.POD_EVICTED, on_node[node]) and log.of(EventKind.NODE_CORDONED, node), "eviction")
    assert log.of(EventKind.POD_EVICTED, on_node[node])[0].reason == "drain"
    assert log.of(EventKind.NODE_CORDONED, node)[0].reason == "drain"
    # The replacement is not scheduled on the cordoned node.
    log.wait_for(lambda _: len(log.of(EventKind.ENDPOINT_ADDED)) == 3, "replacement")
    assert node not in {p.node for p in cluster.pods(deployment)}

    cluster.restore(injection)
    assert api.calls[-1] == ("uncordon", node)
    log.wait_for(lambda _: log.of(EventKind.NODE_UNCORDONED, node), "uncordon")


def test_node_drain_honours_a_pod_disruption_budget(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2, podDisruptionBudget={"minAvailable": 2})
    injection = cluster.inject(deployment, fault(action="node-drain", timeout="1s"), "f0", random.Random(0))
    (node,) = injection.targets
    assert injection.extra["evicted"] == "" and injection.extra["blocked"]
    assert "blockedByPDB=1" in injection.detail
    assert not [c for c in api.calls if c[0] == "delete_pod"]
    # It keeps retrying (like kubectl drain) while the budget allows nothing.
    deadline = time.monotonic() + EVENT_DEADLINE_SECONDS
    while sum(1 for c in api.calls if c[0] == "evict_pod") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(1 for c in api.calls if c[0] == "evict_pod") >= 3
    cluster.restore(injection)
    assert ("uncordon", node) in api.calls


def test_a_drain_of_an_already_cordoned_node_leaves_it_cordoned(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    node = cluster.pods(deployment)[0].node
    api.set_node_unschedulable(node, True)
    api.calls.clear()
    injection = cluster.inject(deployment, fault(action="node-drain", target={"name": node}), "f0", random.Random(0))
    cluster.restore(injection)
    assert not [c for c in api.calls if c[0] in ("cordon", "uncordon")]
