"""Teardown on the real control plane undoes every fault and deletes the namespace."""

from __future__ import annotations

import random

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from pydantic import TypeAdapter

from chaoslab.spec import FaultSpec
from tests.e2e.conftest import chaoslab_namespaces, cluster_problems, kwok_state, pods_by_node, workload
from tests.e2e.localcluster import State

pytestmark = pytest.mark.e2e

FAULT = TypeAdapter(FaultSpec)


def test_teardown_uncordons_resumes_nodes_and_deletes_the_namespace(local: State, open_kube, core: k8s.CoreV1Api) -> None:
    cluster = open_kube(maxBlastRadius="100%")
    # Pods stay put on a lost node for the whole test (300 s toleration): teardown has to
    # bring back a node that still hosts pods, and delete them with the namespace.
    deployment = cluster.deploy(workload(replicas=6, tolerationSeconds=300))
    cluster.wait_ready(deployment, timeout=120)
    hosting = sorted(pods_by_node(cluster, deployment))
    assert len(hosting) >= 2
    drained, crashed = hosting[0], hosting[1]
    cluster.inject(deployment, FAULT.validate_python({"at": 0, "action": "node-drain", "target": {"name": drained}}), "f0", random.Random(0))
    cluster.inject(deployment, FAULT.validate_python({"at": 0, "action": "node-crash", "target": {"name": crashed}}), "f1", random.Random(0))
    assert core.read_node(drained).spec.unschedulable
    assert kwok_state(local, crashed) == "paused"

    cluster.teardown(deployment)  # no restore was called: teardown must undo both

    assert cluster_problems(local, core) == []
    assert kwok_state(local, crashed) == "running"
    with pytest.raises(ApiException) as gone:
        core.read_namespace(deployment.namespace)
    assert gone.value.status == 404


def test_close_after_an_error_mid_trial_still_cleans_up(local: State, open_kube, core: k8s.CoreV1Api) -> None:
    """The engine's path when a trial fails before teardown: close() cleans up by itself."""
    cluster = open_kube()
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=120)
    (node,) = cluster.inject(deployment, FAULT.validate_python({"at": 0, "action": "node-drain", "target": {"count": 1}}), "f0", random.Random(0)).targets
    assert deployment.namespace in chaoslab_namespaces(core)

    cluster.close()  # teardown never ran (as after an exception in the trial)

    assert not core.read_node(node).spec.unschedulable
    assert deployment.namespace not in chaoslab_namespaces(core)
    assert cluster_problems(local, core) == []
