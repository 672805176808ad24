"""The local control plane itself: real components, on loopback only.

These checks guard the premise of every other e2e test: the API server is the version
we built, the nodes are KWOK's, and nothing the harness started listens beyond 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client as k8s

from chaoslab.cluster.kube.client import connect
from chaoslab.errors import ClusterError
from chaoslab.spec import KubernetesClusterSpec
from tests.e2e import localcluster
from tests.e2e.localcluster import State

pytestmark = pytest.mark.e2e


def test_the_api_server_is_the_kubernetes_version_we_built(local: State, kube: k8s.ApiClient) -> None:
    version = k8s.VersionApi(kube).get_code()
    assert version.git_version == local.version
    assert local.version == localcluster.build_versions().kubernetes


def test_nodes_are_kwok_nodes_and_ready(local: State, core: k8s.CoreV1Api) -> None:
    nodes = {node.metadata.name: node for node in core.list_node().items}
    assert set(nodes) == {local.control_plane_node, *local.workers}
    for name, node in nodes.items():
        assert node.metadata.annotations.get(localcluster.KWOK_NODE_ANNOTATION) == "fake"
        assert node.status.node_info.kubelet_version.startswith("kwok-")
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", name
        # Every node address is loopback: a NodePort URL can only reach this machine.
        assert all(a.address.startswith("127.") for a in node.status.addresses if a.type == "InternalIP")
    control_plane = nodes[local.control_plane_node]
    assert localcluster.CONTROL_PLANE_LABEL in control_plane.metadata.labels
    assert [(t.key, t.effect) for t in control_plane.spec.taints] == [(localcluster.CONTROL_PLANE_LABEL, "NoSchedule")]


def test_every_component_listens_on_loopback_only(local: State) -> None:
    pids = [r.pid for r in local.processes]
    sockets = localcluster.listening_sockets(pids)
    by_name = {r.pid: r.name for r in local.processes}
    listeners = {(by_name[pid], address, port) for pid, address, port in sockets}
    # etcd (client and peer) and the API server do listen; all of it on loopback.
    assert {name for name, _, _ in listeners} >= {"etcd", "kube-apiserver"}
    assert all(localcluster.is_loopback(address) for _, address, _ in listeners), listeners
    api_port = int(local.server.rsplit(":", 1)[1])
    assert ("kube-apiserver", "127.0.0.1", api_port) in listeners


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed")
def test_ss_agrees_that_nothing_listens_beyond_loopback(local: State) -> None:
    """The same check through `ss -ltnp`, independent of our /proc reading."""
    output = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
    pids = {r.pid for r in local.processes}
    ours = []
    for line in output.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            local_address = line.split()[3]
            ours.append(local_address.rsplit(":", 1)[0].strip("[]"))
    assert ours, "ss shows no listening socket of the control plane"
    assert all(localcluster.is_loopback(address) for address in ours), ours


def test_inside_a_pod_chaoslab_uses_its_service_account(local: State, core: k8s.CoreV1Api, tmp_path: Path) -> None:
    """The in-cluster path end to end: a real service-account token (TokenRequest) and the
    cluster CA where a pod has them, the API server from the environment a pod gets, TLS
    verified. `default` has no RBAC grants, so the API server's real refusal must come
    back as our error naming what is missing."""
    request = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    token = core.create_namespaced_service_account_token("default", "default", request).status.token
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(token)
    cluster = yaml.safe_load(Path(local.kubeconfig).read_text())["clusters"][0]["cluster"]
    (account / "ca.crt").write_bytes(Path(cluster["certificate-authority"]).read_bytes())
    server = urlsplit(local.server)
    environ = {
        "KUBECONFIG": str(tmp_path / "none"),  # no kubeconfig, as in a pod
        "KUBERNETES_SERVICE_HOST": str(server.hostname),
        "KUBERNETES_SERVICE_PORT": str(server.port),
    }
    api = connect(KubernetesClusterSpec(), environ=environ, service_account_dir=account)
    try:
        assert api.connection.source == "in-cluster service account"
        assert api.connection.server == f"https://{server.hostname}:{server.port}"
        with pytest.raises(ClusterError, match=r'system:serviceaccount:default:default.*cannot list resource "nodes".*HTTP 403'):
            api.list_nodes()
    finally:
        api.close()
