"""Deploying a workload: pods become ready endpoints behind one Service URL."""

from __future__ import annotations

import sys

import pytest

from chaoslab.cluster.network import connection_to
from chaoslab.errors import ClusterError
from chaoslab.spec import ContainerKillFault, NodeDrainFault, TargetSpec

from tests.sim.helpers import EventRecorder, get, poll_until, workload


def test_three_replicas_answer_through_the_service_from_different_pods(make_cluster):
    cluster = make_cluster(nodes=3)
    deployment = cluster.deploy(workload(replicas=3))
    cluster.wait_ready(deployment, timeout=30)

    pods = cluster.pods(deployment)
    assert len(pods) == 3 and all(p.ready and p.phase == "Running" for p in pods)
    assert sorted(p.node for p in pods) == ["node-1", "node-2", "node-3"]  # spread
    assert len(cluster.endpoints(deployment)) == 3

    url = cluster.service_url(deployment)
    answers = {get(url, network=cluster.client_network()) for _ in range(40)}
    assert answers == {f"ok:{p.name}" for p in pods}


def test_event_stream_is_complete_and_ordered_per_pod(make_cluster):
    cluster = make_cluster(nodes=2)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=3))
    cluster.wait_ready(deployment, timeout=30)
    events = recorder.pull()

    timestamps = [e.ts for e in events]
    assert timestamps == sorted(timestamps)
    lifecycle = ["pod_created", "pod_scheduled", "container_started", "pod_ready", "endpoint_added"]
    for pod in cluster.pods(deployment):
        mine = [e for e in events if e.name == pod.name and e.kind.value in lifecycle]
        assert [e.kind.value for e in mine] == lifecycle, pod.name
        assert [e.ts for e in mine] == sorted(e.ts for e in mine)
        scheduled = mine[1]
        assert scheduled.node == pod.node


def test_wait_ready_names_each_pod_that_is_not_ready_and_why(make_cluster):
    cluster = make_cluster(nodes=1)
    crashing = workload(
        replicas=2, command=[sys.executable, "-c", "import sys; print('boom: no config'); sys.exit(3)"]
    )
    deployment = cluster.deploy(crashing)
    with pytest.raises(ClusterError) as caught:
        cluster.wait_ready(deployment, timeout=3)
    message = str(caught.value)
    assert message.startswith("0 of 2 pods ready after 3s")
    for pod in cluster.pods(deployment):
        assert pod.name in message
    assert "exitCode=3" in message and "boom: no config" in message


# A user's own server in place of the built-in app: Python's, on the pod's $PORT.
STDLIB_HTTP_SERVER = workload(
    replicas=1,
    command=[sys.executable, "-m", "http.server", "--bind", "$(HOST)", "$(PORT)"],
    readiness_probe={"httpGet": {"path": "/"}, "periodSeconds": 1},
)


def test_custom_command_listening_on_port_replaces_the_app(make_cluster):
    cluster = make_cluster(nodes=1)
    deployment = cluster.deploy(STDLIB_HTTP_SERVER)
    cluster.wait_ready(deployment, timeout=30)
    connection = connection_to(cluster.service_url(deployment), 5, cluster.client_network())
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 200 and b"Directory listing" in body


def test_pod_with_no_schedulable_node_stays_pending_and_says_why(make_cluster, rng):
    cluster = make_cluster(nodes=1)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=1))
    cluster.wait_ready(deployment, timeout=30)

    cluster.inject(deployment, NodeDrainFault(action="node-drain", at=0), "f1", rng)
    pending = poll_until(lambda: recorder.of("pod_pending"), 10, "replacement reported Pending")
    assert pending[0].detail == "0/1 nodes are available: 1 node(s) were unschedulable"
    with pytest.raises(ClusterError, match=r"0 of 1 pods ready after 0.5s: web-\w{5} Pending \(0/1 nodes"):
        cluster.wait_ready(deployment, timeout=0.5)


def test_a_users_command_ends_as_it_would_without_the_shim(make_cluster, rng):
    """The container shim is transparent: SIGTERM reaches the command itself, and its
    death by that signal (not the shim's exit code) is what the kubelet records."""
    cluster = make_cluster(nodes=1)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(STDLIB_HTTP_SERVER)
    cluster.wait_ready(deployment, timeout=30)
    (pod,) = cluster.pods(deployment)
    fault = ContainerKillFault(action="container-kill", at=0, signal="SIGTERM", target=TargetSpec(name=pod.name))
    cluster.inject(deployment, fault, "f1", rng)
    poll_until(lambda: recorder.of("container_died", pod.name), 15, "the container's death recorded")
    assert recorder.of("container_died", pod.name)[0].detail.startswith("signal=SIGTERM")


def test_a_command_that_is_not_installed_is_a_run_container_error(make_cluster):
    cluster = make_cluster(nodes=1)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=1, command=["chaoslab-no-such-program", "--serve"]))
    poll_until(lambda: recorder.of("container_died"), 15, "the start failure recorded")
    (died, *_) = recorder.of("container_died")
    assert died.reason == "RunContainerError"
    assert "chaoslab-no-such-program" in died.detail and "not found" in died.detail
    assert not cluster.pods(deployment)[0].ready
