"""The Service proxy on its own: kube-proxy's client-visible semantics, against real app processes."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import sys
from collections.abc import Iterator

import pytest

from chaoslab.cluster.network import HOST_NETWORK
from chaoslab.cluster.sim.kubelet import APP_PATH
from chaoslab.cluster.sim.processes import ManagedProcess, PortAllocator, spawn
from chaoslab.cluster.sim.service import PortTaken, ServiceProxyProcess, start_proxy

from tests.sim.helpers import get, poll_until, workload


@pytest.fixture
def ports() -> PortAllocator:
    # Not seeded: two suites on one machine would try the same ports in the same order.
    return PortAllocator(random.Random())


@pytest.fixture
def backends(ports: PortAllocator) -> Iterator[dict[str, tuple[ManagedProcess, int]]]:
    started: dict[str, tuple[ManagedProcess, int]] = {}
    for name in ("pod-a", "pod-b"):
        port = ports.allocate()
        env = dict(os.environ, PORT=str(port), POD_NAME=name, NODE_NAME="node-x")
        started[name] = (spawn([sys.executable, "-S", str(APP_PATH)], env, name, None), port)
    for name, (_, port) in started.items():
        poll_until(lambda: get(f"http://127.0.0.1:{port}", network=HOST_NETWORK).startswith("ok:"), 15, f"{name} listening")
    yield started
    for process, _ in started.values():
        process.kill()


@pytest.fixture
def proxy(ports: PortAllocator) -> Iterator[ServiceProxyProcess]:
    service = start_proxy("web", ports, seed=1, python=sys.executable, env=os.environ, log_path=None)
    yield service
    service.stop()


def _address(port: int) -> tuple[str, int]:
    return ("127.0.0.1", port)


def test_no_endpoints_means_connection_refused(proxy, backends):
    assert get(proxy.url, network=HOST_NETWORK) == "refused"
    proxy.update([_address(backends["pod-a"][1])], [], ack=True)
    assert get(proxy.url, network=HOST_NETWORK) == "ok:pod-a"
    proxy.update([], [], ack=True)
    assert get(proxy.url, network=HOST_NETWORK) == "refused"


def test_new_connections_are_balanced_across_endpoints(proxy, backends):
    proxy.update([_address(port) for _, port in backends.values()], [], ack=True)
    assert {get(proxy.url, network=HOST_NETWORK) for _ in range(30)} == {"ok:pod-a", "ok:pod-b"}


def test_a_refusing_backend_resets_the_client_without_retry(proxy, ports):
    dead = ports.allocate()  # nothing listens there
    proxy.update([_address(dead)], [], ack=True)
    assert {get(proxy.url, network=HOST_NETWORK) for _ in range(5)} == {"reset"}


def test_blackholed_endpoint_times_out(proxy, backends):
    address = _address(backends["pod-a"][1])
    proxy.update([address], [address], ack=True)
    assert get(proxy.url, network=HOST_NETWORK, timeout=0.5) == "timeout"


def test_established_connection_stays_pinned_after_endpoint_removal(proxy, backends):
    proxy.update([_address(backends["pod-a"][1])], [], ack=True)
    connection = http.client.HTTPConnection(*proxy.url.removeprefix("http://").split(":"), timeout=2)
    try:
        connection.request("GET", "/")
        assert json.loads(connection.getresponse().read())["pod"] == "pod-a"
        proxy.update([_address(backends["pod-b"][1])], [], ack=True)
        connection.request("GET", "/")  # same keep-alive connection: conntrack keeps it
        assert json.loads(connection.getresponse().read())["pod"] == "pod-a"
        assert get(proxy.url, network=HOST_NETWORK) == "ok:pod-b"  # new connections follow the endpoints
    finally:
        connection.close()


def test_connection_to_a_crashed_node_goes_silent_instead_of_closing(proxy, backends):
    process, port = backends["pod-a"]
    proxy.update([_address(port)], [], ack=True)
    connection = http.client.HTTPConnection(*proxy.url.removeprefix("http://").split(":"), timeout=0.5)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        proxy.update([_address(port)], [_address(port)], ack=True)
        process.signal_group(signal.SIGKILL)
        connection.request("GET", "/")
        with pytest.raises(TimeoutError):
            connection.getresponse()
    finally:
        connection.close()


def _listening_socket(port: int) -> socket.socket:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    return holder


def test_a_port_taken_before_the_proxy_binds_it_is_said_plainly(ports: PortAllocator) -> None:
    port = ports.allocate()
    with _listening_socket(port):  # another run on the machine got there first
        with pytest.raises(PortTaken, match=f"127.0.0.1:{port} was taken"):
            ServiceProxyProcess("web", port, seed=1, python=sys.executable, env=os.environ, log_path=None)


def test_the_cluster_moves_its_service_to_another_port_when_one_is_taken(make_cluster) -> None:
    cluster = make_cluster(nodes=1, proxy_mode="userspace")
    allocator = cluster._world.ports
    taken = allocator.allocate()
    handed_out = iter([taken])
    real_allocate = allocator.allocate
    # The race, made certain: the allocator hands out a port that is free when checked
    # and bound by somebody else before the proxy binds it.
    allocator.allocate = lambda: next(handed_out, None) or real_allocate()
    with _listening_socket(taken):
        deployment = cluster.deploy(workload(replicas=1))
        cluster.wait_ready(deployment, timeout=30)
        url = cluster.service_url(deployment)
        assert not url.endswith(f":{taken}")
        assert get(url, network=cluster.client_network()).startswith("ok:")
