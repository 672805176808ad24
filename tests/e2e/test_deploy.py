"""Deploy and wait ready on the real control plane: Deployment -> ReplicaSet -> scheduler -> KWOK."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from chaoslab.cluster.base import EventKind
from chaoslab.errors import ClusterError
from tests.e2e.conftest import EventLog, workload
from tests.e2e.localcluster import State

pytestmark = pytest.mark.e2e


def test_deploy_waits_for_the_rollout_and_records_each_pods_way_in(local: State, open_kube, core: k8s.CoreV1Api) -> None:
    cluster = open_kube()
    log = EventLog(cluster)
    deployment = cluster.deploy(workload(replicas=3))
    cluster.wait_ready(deployment, timeout=120)

    pods = cluster.pods(deployment)
    assert len(pods) == 3 and all(p.ready and p.phase == "Running" for p in pods)
    # The control-plane node is tainted NoSchedule: the real scheduler puts pods on workers.
    assert {p.node for p in pods} <= set(local.workers)
    namespace = core.read_namespace(deployment.namespace)
    assert namespace.metadata.labels["app.kubernetes.io/managed-by"] == "chaoslab"

    # Every pod's way in, from our watches: created by the ReplicaSet controller,
    # bound by the scheduler, started and made ready by KWOK, then an endpoint.
    log.wait_for(lambda log: len(log.of(EventKind.ENDPOINT_ADDED)) == 3, "three endpoints")
    for pod in pods:
        created = log.of(EventKind.POD_CREATED, pod.name)
        scheduled = log.of(EventKind.POD_SCHEDULED, pod.name)
        assert created and created[0].reason == "ReplicaSet"
        assert scheduled and scheduled[0].node == pod.node and scheduled[0].reason == "default-scheduler"
        assert log.of(EventKind.CONTAINER_STARTED, pod.name)
        assert log.of(EventKind.POD_READY, pod.name)
        assert log.of(EventKind.ENDPOINT_ADDED, pod.name)[0].node == pod.node

    # The load target: a NodePort on a (loopback) node address; never contacted here.
    url = cluster.service_url(deployment)
    service = core.read_namespaced_service(deployment.name, deployment.namespace)
    assert url == f"http://127.0.0.2:{service.spec.ports[0].node_port}"

    cluster.teardown(deployment)
    with pytest.raises(ApiException) as gone:
        core.read_namespace(deployment.namespace)
    assert gone.value.status == 404


def test_a_rollout_that_cannot_finish_is_explained_with_the_schedulers_reason(open_kube) -> None:
    """Pods asking for more CPU than any node has stay Pending; wait_ready says why."""
    cluster = open_kube()
    deployment = cluster.deploy(workload(replicas=2, resources={"requests": {"cpu": "500"}}))
    with pytest.raises(ClusterError) as failure:
        cluster.wait_ready(deployment, timeout=8)
    message = str(failure.value)
    assert "did not become ready within 8s (0/2 ready)" in message
    assert "Insufficient cpu" in message  # the real scheduler's FailedScheduling reason
    cluster.teardown(deployment)
