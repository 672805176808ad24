"""The refusals that keep an experiment from hurting what it did not create."""

from __future__ import annotations

import random

import pytest

from chaoslab.cluster.kube.safety import blast_radius_limit
from chaoslab.cluster.nodeproviders import NoNodeProvider
from chaoslab.errors import EXIT_USAGE, UsageError
from tests.kubernetes.conftest import workload
from tests.kubernetes.fake import FakeKubeApi, RecordingProvider, kind_nodes
from tests.kubernetes.test_faults import fault, ready_cluster


@pytest.mark.parametrize("context", ["minikube", "kind-kind", "kind-chaos", "docker-desktop"])
def test_local_contexts_are_accepted(make_cluster, context: str) -> None:
    make_cluster(api=FakeKubeApi(context=context))


def test_a_foreign_context_is_refused_without_yes(make_cluster, api: FakeKubeApi) -> None:
    foreign = FakeKubeApi(context="gke_shop_europe-west1_prod")
    with pytest.raises(UsageError) as caught:
        make_cluster(api=foreign)
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE
    assert "'gke_shop_europe-west1_prod'" in message and "--yes" in message and "allowContexts" in message
    assert foreign.calls == []  # refused before any change
    make_cluster(api=foreign, yes=True)
    make_cluster({"allowContexts": ["gke_shop_*"]}, api=foreign)


def test_in_cluster_config_counts_as_not_local(make_cluster) -> None:
    with pytest.raises(UsageError, match="'in-cluster'"):
        make_cluster(api=FakeKubeApi(context=None))
    make_cluster({"allowContexts": ["in-cluster"]}, api=FakeKubeApi(context=None))


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease"])
def test_system_namespaces_are_refused(make_cluster, api: FakeKubeApi, namespace: str) -> None:
    with pytest.raises(UsageError, match=f"refusing namespace '{namespace}'"):
        make_cluster({"namespace": namespace})
    assert api.calls == []


def test_a_control_plane_node_is_never_a_target(make_cluster, api: FakeKubeApi, provider) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=2)
    for action in ("node-crash", "node-hang", "node-drain"):
        with pytest.raises(UsageError, match="control-plane node"):
            cluster.inject(deployment, fault(action=action, target={"name": "minikube"}), "f0", random.Random(0))
    assert provider.calls == []
    assert not [c for c in api.calls if c[0] == "cordon"]


def test_node_faults_pick_only_workers_even_when_the_control_plane_hosts_pods(make_cluster) -> None:
    # kind: the control plane is tainted NoSchedule, but a workload may tolerate it; here
    # every worker is cordoned so the pods land on the control-plane node.
    api = FakeKubeApi(context="kind-kind", nodes=kind_nodes())
    for node in ("kind-worker", "kind-worker2", "kind-worker3"):
        api.set_node_unschedulable(node, True)
    provider = RecordingProvider(api)
    cluster = make_cluster(api=api, node_provider=provider)
    deployment = cluster.deploy(workload(replicas=1))
    cluster.wait_ready(deployment, timeout=10)
    assert {p.node for p in cluster.pods(deployment)} == {"kind-control-plane"}
    injection = cluster.inject(deployment, fault(action="node-crash"), "f0", random.Random(0))
    assert injection.targets == () and provider.calls == []  # skipped, as on sim
    (announced,) = [e for e in cluster.events() if e.kind.value == "fault_injected"]
    assert "skipped=no eligible target" in announced.detail


def test_a_node_that_hosts_no_workload_pod_is_refused(make_cluster) -> None:
    cluster, deployment = ready_cluster(make_cluster, replicas=1)
    hosting = cluster.pods(deployment)[0].node
    other = ({"minikube-m02", "minikube-m03"} - {hosting}).pop()
    with pytest.raises(UsageError, match=f"target '{other}' is not one of"):
        cluster.inject(deployment, fault(action="node-drain", target={"name": other}), "f0", random.Random(0))


def test_blast_radius_limits_pod_faults(make_cluster, api: FakeKubeApi) -> None:
    cluster, deployment = ready_cluster(make_cluster, {"maxBlastRadius": "50%"}, replicas=4)
    with pytest.raises(UsageError) as caught:
        cluster.inject(deployment, fault(action="pod-delete", target={"count": 3}), "f0", random.Random(0))
    assert "would disrupt 3 of 4 pods" in str(caught.value) and "maxBlastRadius 50%" in str(caught.value)
    assert not [c for c in api.calls if c[0] == "delete_pod"]
    cluster.inject(deployment, fault(action="pod-delete", target={"count": 2}), "f1", random.Random(0))


def test_blast_radius_counts_nodes_still_down(make_cluster) -> None:
    api = FakeKubeApi(context="kind-kind", nodes=kind_nodes())
    provider = RecordingProvider(api)
    cluster = make_cluster({"maxBlastRadius": "50%"}, api=api, node_provider=provider)
    deployment = cluster.deploy(workload(replicas=3))
    cluster.wait_ready(deployment, timeout=10)
    first = cluster.inject(deployment, fault(action="node-crash"), "f0", random.Random(0))
    # 3 workers at 50%: one node at a time; the crashed one still counts.
    with pytest.raises(UsageError, match=r"would disrupt 2 of 3 worker nodes \(1 already disrupted"):
        cluster.inject(deployment, fault(action="node-hang"), "f1", random.Random(0))
    assert provider.calls == [("crash", first.targets[0])]
    cluster.restore(first)
    cluster.inject(deployment, fault(action="node-hang"), "f2", random.Random(0))


def test_a_single_replica_can_still_be_tested() -> None:
    assert blast_radius_limit(0.5, 1) == 1
    assert blast_radius_limit(0.5, 3) == 1
    assert blast_radius_limit(0.5, 4) == 2
    assert blast_radius_limit(1.0, 3) == 3


def test_node_crash_without_a_node_provider_says_how_to_set_one(make_cluster) -> None:
    cluster = make_cluster(node_provider=NoNodeProvider())
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=10)
    with pytest.raises(UsageError, match="nodeProvider.type to docker"):
        cluster.inject(deployment, fault(action="node-crash"), "f0", random.Random(0))
