"""The engine-side handle of one simulated Service: starts `proxy.py`, feeds it endpoints.

Why it exists: the proxy is a separate process (see proxy.py for the kube-proxy model);
this wrapper owns its lifetime and the one-line JSON protocol, and turns a dead or
silent proxy into a ClusterError that says where its log is.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from chaoslab.cluster.sim.processes import ManagedProcess, PortAllocator, Reaper, describe_exit, spawn, tail
from chaoslab.errors import ClusterError

PROXY_PATH = Path(__file__).with_name("proxy.py")
# proxy.py's first line when its port was taken (proxy.py runs as a script with -S, so
# the word is repeated there rather than imported).
PORT_IN_USE = "port-in-use"
# How long the proxy may take to start listening (interpreter start is ~50 ms; a busy
# 2-core machine can be 20x slower).
PROXY_START_TIMEOUT = 15.0
# How many free-looking ports a proxy tries when another process on the machine binds
# each one first.
PORT_ATTEMPTS = 5
# How long an acknowledged update may take; only used when a node fails, so that the
# blackhole is in place before the node's processes die.
PROXY_ACK_TIMEOUT = 2.0

Address = tuple[str, int]


class PortTaken(ClusterError):
    """Another process bound the proxy's port between the check and the bind: try another."""


class ServiceProxyProcess:
    """One running proxy. Must be created and stopped on the control-plane thread."""

    def __init__(
        self,
        name: str,
        port: int,
        seed: int,
        python: str,
        env: Mapping[str, str],
        log_path: Path | None,
        reaper: Reaper | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        argv = [python, "-S", str(PROXY_PATH), "--port", str(port), "--seed", str(seed)]
        try:
            self.process: ManagedProcess = spawn(
                argv,
                env,
                label=f"service/{name}",
                log_path=log_path,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                reaper=reaper,
            )
        except OSError as exc:
            raise ClusterError(f"could not start the service proxy for {name!r}: {exc}") from exc
        line = self._read_line(PROXY_START_TIMEOUT)
        if line.startswith(PORT_IN_USE):
            self.stop()
            raise PortTaken(f"127.0.0.1:{port} was taken before the service proxy for {name!r} could bind it")
        if not line.startswith("ready"):
            self.stop()
            raise ClusterError(
                f"the service proxy for {name!r} did not start on 127.0.0.1:{port}: "
                f"{line or 'no answer'} {self._log_hint()}".strip()
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def update(self, endpoints: Iterable[Address], blackhole: Iterable[Address], ack: bool = False) -> None:
        message = {
            "endpoints": [list(address) for address in endpoints],
            "blackhole": [list(address) for address in blackhole],
        }
        if ack:
            message["ack"] = True
        popen = self.process.popen
        assert popen.stdin is not None
        try:
            popen.stdin.write(json.dumps(message).encode() + b"\n")
            popen.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ClusterError(f"the service proxy for {self.name!r} is gone: {self.failure()}") from exc
        if ack and self._read_line(PROXY_ACK_TIMEOUT) != "ack":
            raise ClusterError(f"the service proxy for {self.name!r} stopped answering: {self.failure()}")

    def failure(self) -> str:
        """Why the proxy is not running ('' while it runs)."""
        status = self.process.poll()
        if status is None:
            return ""
        return f"it exited ({describe_exit(status)}) {self._log_hint()}".strip()

    def stop(self) -> None:
        popen = self.process.popen
        for stream in (popen.stdin, popen.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass  # a broken pipe on close: the proxy is already gone
        self.process.kill()

    def _read_line(self, timeout: float) -> str:
        stdout = self.process.popen.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        chunks = b""
        fd = stdout.fileno()
        while not chunks.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                break
            chunk = os.read(fd, 1)
            if not chunk:
                break
            chunks += chunk
        return chunks.decode(errors="replace").strip()

    def _log_hint(self) -> str:
        last = tail(self.log_path)
        where = f"(log: {self.log_path})" if self.log_path is not None else ""
        return f"{last} {where}".strip()


def start_proxy(
    name: str,
    ports: PortAllocator,
    seed: int,
    python: str,
    env: Mapping[str, str],
    log_path: Path | None,
    reaper: Reaper | None = None,
) -> ServiceProxyProcess:
    """A proxy on a free port from `ports`; another port when a process elsewhere on the
    machine (another run, another test suite) binds the chosen one before the proxy does."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = ports.allocate()
        try:
            return ServiceProxyProcess(name, port, seed=seed, python=python, env=env, log_path=log_path, reaper=reaper)
        except PortTaken:
            if attempt == PORT_ATTEMPTS:
                raise
        except ClusterError:
            ports.release(port)
            raise
        # Not released after PortTaken: that port belongs to somebody else now.
    raise AssertionError("unreachable")  # pragma: no cover
