"""The simulated Service: a TCP proxy process that behaves like kube-proxy in iptables mode.

Why it exists: the load generator must hit one stable address whose routing changes
exactly as a Service's does while pods come and go, with the same failure modes a
client sees on a real cluster. It runs as its own process (stdlib only, started by path
with the simulator's interpreter) so that proxying never competes with the control
plane for the engine's GIL.

Semantics modelled on kube-proxy (iptables mode, the default):
- Balancing is per CONNECTION, chosen at random among the current endpoints (iptables
  `statistic --mode random`); an established connection stays pinned to its backend.
- Endpoint changes apply to NEW connections only; a connection to a removed endpoint is
  not closed (conntrack keeps it flowing until the backend itself goes away).
- No retries: if the chosen backend refuses, the client socket is closed with RST
  (SO_LINGER 0), so the client sees a reset, as it would see the backend's RST.
- No endpoints at all: kube-proxy installs a REJECT rule, clients get "connection
  refused". The proxy closes its listening socket (and reopens it on the same port when
  endpoints return), so clients really are refused.
- Blackholed endpoints (pods on a crashed or hung node that are still listed because the
  node-lifecycle controller has not noticed yet): packets vanish on a real network.
  New connections to them are accepted and never answered; existing connections whose
  backend dies stay open and silent. Clients time out.

Protocol with the parent (the simulator): endpoint lists as JSON lines on stdin,
  {"endpoints": [["127.0.0.1", 40001], ...], "blackhole": [["127.0.0.1", 40002]], "ack": true}
applied live; with "ack" the proxy answers "ack" on stdout once applied. The first
stdout line is "ready <port>" once the port was bound. EOF on stdin (the parent went
away) or SIGTERM stops the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import random
import signal
import socket
import struct
import sys

Address = tuple[str, int]

# Listen backlog: a Linux default somaxconn (4096) is what a node offers; 1024 is plenty
# for one simulated Service and avoids SYN retransmits when many clients start at once.
LISTEN_BACKLOG = 1024
# The first line the proxy writes when its port was taken before it could bind it.
PORT_IN_USE = "port-in-use"
# SO_LINGER on, 0 s: close() sends RST instead of FIN, like a refused or reset backend.
_LINGER_RESET = struct.pack("ii", 1, 0)


def _reset(transport: asyncio.BaseTransport | None) -> None:
    """Close a connection with RST so the peer sees 'connection reset'."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass  # the socket is already gone; abort() below closes what is left
    transport.abort()  # type: ignore[attr-defined]


class Router:
    """Current endpoints and blackhole set, shared by every connection."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.endpoints: list[Address] = []
        self.blackhole: set[Address] = set()

    def pick(self) -> Address | None:
        if not self.endpoints:
            return None
        return self.rng.choice(self.endpoints)


class BackendSide(asyncio.Protocol):
    """The proxy's connection to one pod, feeding bytes back to its client."""

    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        client = self.client.transport
        if client is not None and not client.is_closing():
            client.write(data)

    def eof_received(self) -> bool:
        self.client.backend_gone(reset=False)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.backend_gone(reset=exc is not None)

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None and not self.client.transport.is_closing():
            self.client.transport.resume_reading()


class ClientSide(asyncio.Protocol):
    """One accepted client connection, pinned to the backend chosen when it arrived."""

    def __init__(self, router: Router, connections: set[ClientSide]) -> None:
        self.router = router
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.backend: BackendSide | None = None
        self.address: Address | None = None
        self.pending: list[bytes] | None = []
        self.held = False  # blackholed: read and drop, never answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        address = self.router.pick()
        if address is None:  # endpoints vanished between accept and now
            _reset(transport)
            return
        self.address = address
        if address in self.router.blackhole:
            self.held = True
            self.pending = None
            return
        asyncio.get_running_loop().create_task(self._connect(address))

    async def _connect(self, address: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, backend = await loop.create_connection(lambda: BackendSide(self), address[0], address[1])
        except OSError:
            if address in self.router.blackhole:
                self.held = True
                self.pending = None
            else:
                _reset(self.transport)
            return
        self.backend = backend
        if self.transport is None or self.transport.is_closing():
            if backend.transport is not None:
                backend.transport.close()
            return
        for chunk in self.pending or ():
            backend.transport.write(chunk)  # type: ignore[union-attr]
        self.pending = None

    def data_received(self, data: bytes) -> None:
        if self.held:
            return
        if self.pending is not None:
            self.pending.append(data)
        elif self.backend is not None and self.backend.transport is not None:
            self.backend.transport.write(data)

    def eof_received(self) -> bool:
        backend = self.backend.transport if self.backend is not None else None
        if backend is not None and backend.can_write_eof() and not backend.is_closing():
            backend.write_eof()
            return True  # half-close: keep reading the response
        return False

    def backend_gone(self, reset: bool) -> None:
        """The pod closed or reset the connection, or died."""
        if self.held or self.transport is None or self.transport.is_closing():
            return
        if self.address in self.router.blackhole:
            # The pod's node crashed: on a real network nothing would come back at all.
            self.held = True
            return
        if reset:
            _reset(self.transport)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        backend = self.backend.transport if self.backend is not None else None
        if backend is not None and not backend.is_closing():
            backend.close()

    def pause_writing(self) -> None:
        backend = self.backend.transport if self.backend is not None else None
        if backend is not None:
            backend.pause_reading()

    def resume_writing(self) -> None:
        backend = self.backend.transport if self.backend is not None else None
        if backend is not None and not backend.is_closing():
            backend.resume_reading()


class ServiceProxy:
    """Owns the listening socket and applies endpoint updates."""

    def __init__(self, host: str, port: int, rng: random.Random) -> None:
        self.host = host
        self.port = port
        self.router = Router(rng)
        self.connections: set[ClientSide] = set()
        self.server: asyncio.base_events.Server | None = None

    async def bind(self) -> None:
        """Bind once at start so a taken port fails loudly, then follow the endpoints."""
        await self._listen()
        await self._sync_listening()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: ClientSide(self.router, self.connections),
            self.host,
            self.port,
            reuse_address=True,
            backlog=LISTEN_BACKLOG,
        )

    async def _sync_listening(self) -> None:
        if self.router.endpoints and self.server is None:
            await self._listen()
        elif not self.router.endpoints and self.server is not None:
            self.server.close()
            self.server = None

    async def apply(self, message: dict[str, object]) -> None:
        self.router.endpoints = [(str(h), int(p)) for h, p in message.get("endpoints", [])]  # type: ignore[union-attr]
        self.router.blackhole = {(str(h), int(p)) for h, p in message.get("blackhole", [])}  # type: ignore[union-attr]
        await self._sync_listening()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
            if connection.backend is not None and connection.backend.transport is not None:
                connection.backend.transport.abort()


async def serve(host: str, port: int, seed: int) -> None:
    loop = asyncio.get_running_loop()
    proxy = ServiceProxy(host, port, random.Random(seed))
    try:
        await proxy.bind()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # Taken between the simulator's check and this bind (another run on the machine):
        # said plainly, so the simulator picks another port.
        sys.stdout.write(f"{PORT_IN_USE} {port}\n")
        sys.stdout.flush()
        return
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()

    async def follow_stdin() -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break  # the simulator is gone
                message = json.loads(line)
                await proxy.apply(message)
                if message.get("ack"):
                    sys.stdout.write("ack\n")
                    sys.stdout.flush()
        finally:
            stop.set()  # also on failure (e.g. the port could not be re-bound): never hang

    follower = loop.create_task(follow_stdin())
    await stop.wait()
    proxy.close()
    if follower.done() and not follower.cancelled() and follower.exception() is not None:
        raise follower.exception()  # type: ignore[misc] - exit non-zero with the traceback in the log
    follower.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="chaoslab simulated Service proxy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.seed))


if __name__ == "__main__":
    main()
