"""Teardown undoes every change and verifies it: after success, errors and Ctrl-C."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from chaoslab.errors import ClusterError, Interrupted, UsageError
from chaoslab.interrupts import InterruptGuard
from chaoslab.cluster.kube.records import NotFound
from tests.kubernetes.conftest import workload
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider
from tests.kubernetes.test_faults import fault


def assert_clean(api: FakeKubeApi, namespace: str) -> None:
    with pytest.raises(NotFound):
        api.read_namespace(namespace)
    nodes = api.list_nodes().items
    assert not any(n.unschedulable for n in nodes), "a node was left cordoned"
    assert all(n.ready == "True" for n in nodes), "a node was left down"


def test_teardown_after_an_exception_restores_nodes_and_deletes_the_namespace(
    make_cluster, api: FakeKubeApi, provider: RecordingProvider
) -> None:
    cluster = make_cluster({"maxBlastRadius": "100%"})
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=10)
    crashed = cluster.inject(deployment, fault(action="node-crash"), "f0", random.Random(0))
    drained = cluster.inject(deployment, fault(action="node-drain"), "f1", random.Random(0))
    assert crashed.targets != drained.targets
    with pytest.raises(RuntimeError):
        try:
            raise RuntimeError("the load generator died")
        finally:
            cluster.teardown(deployment)  # the engine's finally; restore() was never called
            cluster.close()
    assert ("restore", crashed.targets[0]) in provider.calls
    assert ("uncordon", drained.targets[0]) in api.calls
    assert ("delete_namespace", deployment.namespace) in api.calls
    assert_clean(api, deployment.namespace)
    assert api.closed


def test_close_cleans_up_when_deploy_itself_failed(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster()
    api.fail["create_Service"] = ClusterError("create Service: HTTP 422: Service \"web\" is invalid")
    with pytest.raises(ClusterError, match="is invalid"):
        cluster.deploy(workload(replicas=1))
    cluster.close()  # the engine calls only close() when deploy raised
    assert_clean(api, "chaoslab-web-a1b2c3")


def test_teardown_in_an_explicit_namespace_keeps_the_namespace(make_cluster, api: FakeKubeApi) -> None:
    api.create_namespace("team-a", {})
    cluster = make_cluster({"namespace": "team-a"})
    deployment = cluster.deploy(workload(replicas=2, podDisruptionBudget={"maxUnavailable": 1}))
    cluster.wait_ready(deployment, timeout=10)
    cluster.teardown(deployment)
    assert api.read_namespace("team-a").phase == "Active"
    deleted = [(c[2], c[3]) for c in api.calls if c[0] == "delete_object"]
    assert deleted == [("PodDisruptionBudget", "web"), ("Service", "web"), ("Deployment", "web"), ("ConfigMap", "web-app")]
    assert api.list_pods("team-a").items == ()
    assert ("delete_namespace", "team-a") not in api.calls


def test_a_failed_restore_is_reported_with_what_to_do_by_hand(make_cluster, api: FakeKubeApi) -> None:
    cluster = make_cluster()
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=10)
    drained = cluster.inject(deployment, fault(action="node-drain"), "f0", random.Random(0))
    api.fail["set_node_unschedulable"] = ClusterError("uncordon node: the API server at https://192.168.49.2:8443 did not answer")
    with pytest.raises(ClusterError) as caught:
        cluster.teardown(deployment)
    message = str(caught.value)
    assert "did not answer" in message and f"kubectl uncordon {drained.targets[0]}" in message
    # Everything else was still done: the namespace is gone.
    with pytest.raises(NotFound):
        api.read_namespace(deployment.namespace)


def test_teardown_after_sigint_restores_nodes_and_deletes_the_namespace(
    make_cluster, api: FakeKubeApi, provider: RecordingProvider
) -> None:
    """As the engine does: the first Ctrl-C unwinds the trial, teardown runs shielded,
    and a second Ctrl-C during teardown cannot cut it short."""
    cluster = make_cluster()
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=10)
    messages: list[str] = []
    original_delete = api.delete_namespace

    def delete_namespace_under_a_second_ctrl_c(name: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        original_delete(name)

    api.delete_namespace = delete_namespace_under_a_second_ctrl_c  # type: ignore[method-assign]
    guard = InterruptGuard(notify=messages.append)
    hung = None
    with guard:
        with pytest.raises(Interrupted):
            try:
                hung = cluster.inject(deployment, fault(action="node-hang"), "f0", random.Random(0))
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the measurement
                for _ in range(1000):  # the engine loop; the handler raises in here
                    cluster.events()
                    time.sleep(0.01)
                raise AssertionError("SIGINT did not interrupt")
            finally:
                with guard.shield():
                    cluster.teardown(deployment)
                    cluster.close()
    assert hung is not None
    assert ("restore", hung.targets[0]) in provider.calls
    assert guard.count == 2 and any("cleaning up" in m for m in messages)
    assert_clean(api, deployment.namespace)


def test_an_object_that_already_existed_is_never_deleted(make_cluster, api: FakeKubeApi) -> None:
    api.create_namespace("team-a", {})
    theirs = {"kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80, "targetPort": 80}]}}
    api.create_object("team-a", theirs)
    cluster = make_cluster({"namespace": "team-a"})
    with pytest.raises(ClusterError, match="already exists"):
        cluster.deploy(workload(replicas=1))
    cluster.close()
    assert api.get("Service", "team-a", "web")["spec"]["selector"] == {"app": "theirs"}
    deleted = [(c[2], c[3]) for c in api.calls if c[0] == "delete_object"]
    assert deleted == [("Deployment", "web"), ("ConfigMap", "web-app")]


def test_a_broken_manifest_creates_nothing(make_cluster, api: FakeKubeApi, tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: CronJob\nmetadata: {name: x}\n")
    cluster = make_cluster(base_dir=tmp_path)
    with pytest.raises(UsageError, match="kind CronJob is not supported"):
        cluster.deploy(workload(manifests=["bad.yaml"]))
    assert api.calls == []
