"""The kernel Service path: pod IPs, kube-proxy's nftables rules, what clients see.

Real processes in a real private network namespace, real nft rules, real TCP: each
test is a client's-eye view of one rule of kube-proxy's nftables mode (or of the
network model around it), and the fallback to the user-space proxy when the machine
cannot give a run its own network.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys
import time
from collections.abc import Iterator

import pytest

from chaoslab.cluster.network import NetworkHTTPConnection
from chaoslab.cluster.sim import SimCluster
from chaoslab.cluster.sim.kernelservice import ICMP_RATE_BURST, KernelService, KernelServices, PodAddresses
from chaoslab.cluster.sim.kubelet import APP_PATH
from chaoslab.cluster.sim.netns import PrivateNetwork
from chaoslab.cluster.sim.processes import spawn
from chaoslab.reaper import Reaper
from chaoslab.errors import ClusterError
from chaoslab.spec import ContainerKillFault, NodeCrashFault, PodDeleteFault, ScaleFault, SimClusterSpec, TargetSpec

from tests.sim.helpers import FAST_TIMINGS, EventRecorder, get, poll_until, workload


def _kernel_cluster(make_cluster, nodes: int = 2) -> SimCluster:
    cluster = make_cluster(nodes=nodes, proxy_mode="nftables")
    assert cluster.client_network().description.startswith("kernel")
    return cluster


def test_every_pod_has_an_ip_of_its_nodes_subnet_and_a_replacement_gets_a_new_one(make_cluster, rng):
    cluster = _kernel_cluster(make_cluster, nodes=2)
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=30)
    pods = cluster.pods(deployment)
    for pod in pods:
        ip = ipaddress.IPv4Address(pod.endpoint.rsplit(":", 1)[0])
        index = int(pod.node.rsplit("-", 1)[1])
        assert ip in ipaddress.IPv4Network(f"10.244.{index}.0/24"), (pod.name, pod.node, ip)
    url = cluster.service_url(deployment)
    assert url == "http://10.96.0.11"
    (victim,) = [p for p in pods if p.node == "node-1"]
    cluster.inject(deployment, PodDeleteFault(action="pod-delete", at=0, target=TargetSpec(name=victim.name)), "f1", rng)
    replacement = poll_until(
        lambda: [p for p in cluster.pods(deployment) if p.name != victim.name and p.node == "node-1" and p.ready],
        30,
        "a ready replacement on node-1",
    )[0]
    assert replacement.endpoint.rsplit(":", 1)[0] != victim.endpoint.rsplit(":", 1)[0]
    # The Service's address did not move: that is what it is for.
    assert cluster.service_url(deployment) == url
    assert get(url, network=cluster.client_network()).startswith("ok:")


def test_each_new_connection_picks_a_backend_at_random(make_cluster):
    cluster = _kernel_cluster(make_cluster, nodes=2)
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=30)
    url = cluster.service_url(deployment)
    answers = [get(url, network=cluster.client_network()) for _ in range(200)]
    names = {f"ok:{p.name}" for p in cluster.pods(deployment)}
    counts = {name: answers.count(name) for name in names}
    assert set(answers) == names
    # numgen random mod 2: binomial(200, 0.5); 60..140 fails about once in 10^8 runs.
    assert all(60 <= count <= 140 for count in counts.values()), counts


@pytest.fixture
def kernel_services(tmp_path) -> Iterator[tuple[KernelServices, dict[str, tuple[str, int]]]]:
    """A private network with kube-proxy's rules and two real pods (the built-in app) in it."""
    reaper = Reaper(remove=[])
    network = PrivateNetwork.start(sys.executable, dict(os.environ), reaper, tmp_path / "network.log")
    services = KernelServices(network)
    pods: dict[str, tuple[str, int]] = {}
    processes = []
    try:
        for number, node in enumerate(("node-1", "node-2"), start=1):
            ip = services.allocate(node)
            port = 30000 + number
            env = dict(os.environ, HOST=ip, PORT=str(port), POD_NAME=f"pod-{number}", NODE_NAME=node)
            processes.append(
                spawn([sys.executable, "-S", str(APP_PATH)], env, f"pod-{number}", None, reaper=reaper, enter=network.preexec())
            )
            pods[f"pod-{number}"] = (ip, port)
        for ip, port in pods.values():
            poll_until(lambda ip=ip, port=port: _connects(network, ip, port), 15, f"{ip}:{port} listening")
        yield services, pods
    finally:
        for process in processes:
            process.kill()
        network.close()
        reaper.close()


def _connects(network: PrivateNetwork, ip: str, port: int) -> bool:
    try:
        network.connect((ip, port), 1.0).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _connection_to_pod_1(kernel_services, timeout: float) -> Iterator[tuple[KernelService, NetworkHTTPConnection]]:
    """A Service whose only endpoint is pod-1, and a keep-alive connection through it that
    has had one answer from pod-1."""
    services, pods = kernel_services
    service = services.create("web")
    service.update([pods["pod-1"]], [])
    connection = NetworkHTTPConnection(service.cluster_ip, 80, timeout, services.network)
    try:
        connection.request("GET", "/")
        assert json.loads(connection.getresponse().read())["pod"] == "pod-1"
        yield service, connection
    finally:
        connection.close()


def test_an_established_connection_stays_on_its_pod_after_its_endpoint_is_removed(kernel_services):
    services, pods = kernel_services
    with _connection_to_pod_1(kernel_services, timeout=5.0) as (service, connection):
        service.update([pods["pod-2"]], [])
        connection.request("GET", "/")  # the same connection: conntrack keeps its NAT
        assert json.loads(connection.getresponse().read())["pod"] == "pod-1"
        # New connections follow the rules.
        assert get(service.url, network=services.network) == "ok:pod-2"


def test_an_established_connection_to_a_lost_node_goes_silent(kernel_services):
    _, pods = kernel_services
    with _connection_to_pod_1(kernel_services, timeout=0.5) as (service, connection):
        service.update([pods["pod-1"]], [pods["pod-1"]])  # its node crashed: packets vanish
        connection.request("GET", "/")
        with pytest.raises(TimeoutError):
            connection.getresponse()


def test_a_service_without_endpoints_refuses(make_cluster, rng):
    cluster = _kernel_cluster(make_cluster, nodes=1)
    deployment = cluster.deploy(workload(replicas=1))
    cluster.wait_ready(deployment, timeout=30)
    url = cluster.service_url(deployment)
    cluster.inject(deployment, ScaleFault(action="scale", at=0, replicas=0), "f1", rng)
    poll_until(lambda: not cluster.endpoints(deployment), 15, "no endpoints")
    network = cluster.client_network()
    # kube-proxy's reject, as much of it as the kernel's ICMP budget answers: a burst...
    quick = [_timed(lambda: get(url, network=network)) for _ in range(ICMP_RATE_BURST)]
    assert [answer for answer, _ in quick] == ["refused"] * ICMP_RATE_BURST
    assert all(seconds < 0.5 for _, seconds in quick), quick
    # ... then one a second: the next SYN goes unanswered and its retransmit is refused.
    answer, seconds = _timed(lambda: get(url, network=network, timeout=5.0))
    assert answer == "refused" and 0.5 < seconds < 3.5, (answer, seconds)


def _timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def test_a_dead_container_on_a_live_node_is_refused_by_the_kernel(make_cluster, rng):
    cluster = _kernel_cluster(make_cluster, nodes=1)
    # Restarts are slow here, so the pod stays dead but listed for a moment.
    deployment = cluster.deploy(workload(replicas=1, readiness_probe=None))
    cluster.wait_ready(deployment, timeout=30)
    (pod,) = cluster.pods(deployment)
    address = pod.endpoint
    recorder = EventRecorder(cluster)
    cluster.inject(deployment, ContainerKillFault(action="container-kill", at=0), "f1", rng)
    poll_until(lambda: recorder.of("container_died"), 10, "the container died")
    host, port = address.rsplit(":", 1)
    # Its IP is still there (the sandbox lives on); nothing listens on the port.
    with pytest.raises(ConnectionRefusedError):
        cluster.client_network().connect((host, int(port)), 2.0)


def test_a_crashed_nodes_pods_time_out_until_their_endpoints_go(make_cluster, rng):
    cluster = _kernel_cluster(make_cluster, nodes=2)
    recorder = EventRecorder(cluster)
    deployment = cluster.deploy(workload(replicas=2))
    cluster.wait_ready(deployment, timeout=30)
    url = cluster.service_url(deployment)
    (lost,) = [p for p in cluster.pods(deployment) if p.node == "node-1"]
    (healthy,) = [p.name for p in cluster.pods(deployment) if p.node == "node-2"]
    cluster.inject(deployment, NodeCrashFault(action="node-crash", at=0, target=TargetSpec(name="node-1")), "f1", rng)
    outcomes = [get(url, network=cluster.client_network(), timeout=0.3) for _ in range(16)]
    # Packets to a lost node go nowhere: never refused, never reset.
    assert "timeout" in outcomes and set(outcomes) <= {"timeout", f"ok:{healthy}"}, outcomes
    host, port = lost.endpoint.rsplit(":", 1)
    with pytest.raises(TimeoutError):
        cluster.client_network().connect((host, int(port)), 0.3)
    poll_until(lambda: recorder.of("endpoint_removed", lost.name), 15, "the lost pod's endpoint removed")
    assert {get(url, network=cluster.client_network(), timeout=2) for _ in range(10)} == {f"ok:{healthy}"}


def test_a_gone_pods_ip_times_out(make_cluster, rng):
    """A stale rule that still routes to a deleted pod sends packets to a node that has
    no such pod any more: they go nowhere (what the real-node calibration measured)."""
    cluster = _kernel_cluster(make_cluster, nodes=1)
    deployment = cluster.deploy(workload(replicas=1))
    cluster.wait_ready(deployment, timeout=30)
    (pod,) = cluster.pods(deployment)
    cluster.inject(deployment, PodDeleteFault(action="pod-delete", at=0), "f1", rng)
    poll_until(lambda: pod.name not in {p.name for p in cluster.pods(deployment)}, 30, "the pod object gone")
    host, port = pod.endpoint.rsplit(":", 1)
    with pytest.raises(TimeoutError):
        cluster.client_network().connect((host, int(port)), 0.5)


def test_each_sync_is_one_transaction_the_kernel_takes(kernel_services):
    """The rules as nft itself lists them back after two syncs: kube-proxy's maps and
    chains, a Service's chain gone with its last endpoint, the lost-node set emptied."""
    services, pods = kernel_services
    web, db = services.create("web"), services.create("db-0")
    web.update([pods["pod-1"], pods["pod-2"]], [pods["pod-2"]])
    listed = services.network.run([services.network.nft, "list", "table", "ip", "kube-proxy"])
    pod_1, pod_2 = (f"{ip} . {port}" for ip, port in (pods["pod-1"], pods["pod-2"]))
    assert f"{web.cluster_ip} . tcp . 80 : goto service-web-tcp" in listed
    assert f"{db.cluster_ip} . tcp . 80 : goto reject-chain" in listed
    # (nft lists "dnat ip addr . port to" as "dnat ip to")
    assert f"dnat ip to numgen random mod 2 map {{ 0 : {pod_1}, 1 : {pod_2} }}" in listed
    assert f"elements = {{ {pods['pod-2'][0]} }}" in listed
    web.update([], [])
    listed = services.network.run([services.network.nft, "list", "table", "ip", "kube-proxy"])
    assert "service-web-tcp" not in listed  # no endpoints: no service chain, a reject
    assert f"{web.cluster_ip} . tcp . 80 : goto reject-chain" in listed
    assert pods["pod-2"][0] not in listed


def test_pod_ips_come_back_only_after_the_range_was_used():
    addresses = PodAddresses()
    first = addresses.allocate("node-1")
    addresses.release(first)
    second = addresses.allocate("node-1")
    assert first == "10.244.1.2" and second == "10.244.1.3"
    assert addresses.allocate("node-3") == "10.244.3.2"


def test_without_nft_auto_falls_back_to_the_user_space_proxy_and_says_why(make_cluster, monkeypatch, tmp_path):
    # Our boundary: netns.find_tool is how the sim looks for nft and ip on this machine.
    monkeypatch.setattr("chaoslab.cluster.sim.netns.find_tool", lambda name, path=None: None)
    cluster = make_cluster(nodes=1, proxy_mode="auto")
    description = cluster.client_network().description
    assert description.startswith("user-space proxy on 127.0.0.1") and "nft and ip not found" in description
    deployment = cluster.deploy(workload(replicas=1))
    cluster.wait_ready(deployment, timeout=30)
    url = cluster.service_url(deployment)
    assert url.startswith("http://127.0.0.1:")
    assert get(url, network=cluster.client_network()).startswith("ok:")


def test_nftables_mode_refuses_a_machine_without_nft_naming_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr("chaoslab.cluster.sim.netns.find_tool", lambda name, path=None: None)
    with pytest.raises(ClusterError, match=r"proxyMode is nftables.*nft and ip not found.*proxyMode: auto"):
        SimCluster(SimClusterSpec(nodes=1, timings=FAST_TIMINGS, proxy_mode="nftables"), workdir=tmp_path)
