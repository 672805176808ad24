"""The real-node cluster itself: real kubelets, isolated from the host, the host unchanged.

What `realnodes.py up` promises and the lessons rely on: every node is a running Docker
container of the suite's own daemon on its own internal network (never the host's),
registered by a real kubelet with containerd; the kubelet found the kernel-wide sysctls
it wants inside its node while the host's kept their values; the host's nft ruleset is
what it was before `up`. (`make e2e-nodes` compares the host again after `down`.)
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client as k8s

from tests.e2e import localcluster, realnodes
from tests.e2e.realnodes import State
from tests.realnodes.conftest import docker

pytestmark = pytest.mark.realnodes


def test_every_node_is_a_real_kubelet_with_containerd(nodes: State, core: k8s.CoreV1Api) -> None:
    listed = {n.metadata.name: n for n in core.list_node().items}
    assert set(listed) == {n.name for n in nodes.nodes}
    for record in nodes.nodes:
        info = listed[record.name].status.node_info
        assert info.kubelet_version == localcluster.build_versions().kubernetes
        assert info.container_runtime_version.startswith("containerd://1.")
        addresses = {a.type: a.address for a in listed[record.name].status.addresses}
        assert addresses["InternalIP"] == record.address
        assert "kwok.x-k8s.io/node" not in (listed[record.name].metadata.annotations or {})
    control_plane = listed[nodes.control_plane_node]
    assert localcluster.CONTROL_PLANE_LABEL in control_plane.metadata.labels
    assert any(t.key == localcluster.CONTROL_PLANE_LABEL and t.effect == "NoSchedule" for t in control_plane.spec.taints or ())


def test_nodes_run_on_their_own_internal_network_never_the_hosts(nodes: State) -> None:
    for record in nodes.nodes:
        inspected = json.loads(docker(nodes, "inspect", record.name).stdout)[0]
        assert inspected["HostConfig"]["NetworkMode"] == nodes.network
        assert inspected["HostConfig"]["Privileged"] is False
        assert inspected["Config"]["Labels"][realnodes.OWNER_LABEL] == nodes.state_dir
        routes = docker(nodes, "exec", record.name, "ip", "route").stdout
        assert "default" not in routes, routes  # nothing outside the suite's network is reachable
    network = json.loads(docker(nodes, "network", "inspect", nodes.network).stdout)[0]
    assert network["Internal"] is True
    assert network["IPAM"]["Config"][0]["Subnet"] == nodes.subnet


def test_the_kubelet_sees_its_sysctls_and_the_host_keeps_its_own(nodes: State) -> None:
    recorded = dict(nodes.host_sysctls)
    assert realnodes.read_sysctls(tuple(recorded)) == recorded
    worker = nodes.workers[0]
    for key, wanted in realnodes.KUBELET_SYSCTLS.items():
        inside = docker(nodes, "exec", worker, "cat", f"/proc/sys/{key}").stdout.strip()
        assert inside == wanted, (key, inside)


def test_the_hosts_nft_ruleset_is_as_before_the_nodes_started(nodes: State) -> None:
    assert realnodes.nft_ruleset() == nodes.host_nft
    # ... while inside a node kube-proxy's rules are there: the host's are simply not touched.
    inside = docker(nodes, "exec", nodes.workers[0], "iptables-save", "-t", "nat").stdout
    assert "KUBE-SERVICES" in inside
