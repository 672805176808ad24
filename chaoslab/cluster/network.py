"""Where the clients of a workload stand: the load generator, the probes, their sockets.

Why it exists: on a real cluster the Service URL is reachable from the machine chaoslab
runs on, so Locust and the availability probe just connect. The simulator's kernel
Service (sim/netns.py) lives in a private network namespace: its ClusterIP and pod IPs
exist only in there, and the same address outside it is somebody else's network. So a
backend tells the engine how to reach its URLs: a `ClientNetwork` that can open a
connected socket from the right place, and that a freshly forked client process (Locust)
calls before exec to stand in that place too. `HOST_NETWORK` is "right here".
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit


@runtime_checkable
class ClientNetwork(Protocol):
    """How a client reaches a cluster's Service URLs."""

    @property
    def description(self) -> str:
        """One line for run.json and the report (how the Service is implemented)."""
        ...

    def connect(self, address: tuple[str, int], timeout: float) -> socket.socket:
        """A TCP connection to `address`, made where the cluster's addresses exist."""
        ...

    def preexec(self) -> Callable[[], None] | None:
        """What a forked client process must call before exec to be in that place
        (None: nothing, it already is)."""
        ...


class HostNetwork:
    """The machine's own network: a real cluster, or the sim's user-space proxy on 127.0.0.1."""

    def __init__(self, description: str = "the host's network") -> None:
        self._description = description

    @property
    def description(self) -> str:
        return self._description

    def connect(self, address: tuple[str, int], timeout: float) -> socket.socket:
        return socket.create_connection(address, timeout=timeout)

    def preexec(self) -> Callable[[], None] | None:
        return None


HOST_NETWORK = HostNetwork()


class NetworkHTTPConnection(http.client.HTTPConnection):
    """http.client's connection, with its socket opened through a ClientNetwork."""

    def __init__(self, host: str, port: int, timeout: float, network: ClientNetwork) -> None:
        super().__init__(host, port, timeout=timeout)
        self._network = network

    def connect(self) -> None:
        self.sock = self._network.connect((self.host, self.port), float(self.timeout or 0) or 60.0)
        # As http.client does: requests are small, do not wait for more to send.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connection_to(url: str, timeout: float, network: ClientNetwork) -> NetworkHTTPConnection:
    """A connection (not yet opened) to `url`'s host and port (80 when it names none)."""
    parts = urlsplit(url)
    return NetworkHTTPConnection(parts.hostname or "", parts.port or 80, timeout, network)
