"""A sim run's private network: a user + network namespace, entered without root.

Why it exists: the kernel Service (kernelservice.py) needs pod IPs, a ClusterIP and
kube-proxy's nftables rules, and none of that may touch the machine's own network.
A network namespace made inside a user namespace gives exactly that to an unprivileged
user: its addresses, routes and rules exist only in there, and it disappears when the
last process in it exits and the last open handle on it closes.

The pieces:
- `netns_agent.py` makes the namespaces and serves them (ip/nft commands, sockets made
  inside); `PrivateNetwork.start` starts it under the cluster's reaper and opens its
  namespace files, so the engine can put forked children inside with setns(2);
- `PrivateNetwork.preexec()` is what `subprocess.Popen(preexec_fn=...)` calls in a pod's
  or Locust's child: setns into the user namespace (the engine's user is its owner, so
  that is allowed unprivileged), then into the network namespace;
- `PrivateNetwork.connect()` opens a TCP connection from inside, for the engine's own
  threads (kubelet probes, the availability probe).

Where user namespaces are refused (a distribution's sysctl, a container's seccomp) or
ip(8) or nft(8) is missing, `start` raises `NetworkUnavailable` saying why, and the
simulator falls back to its user-space proxy.
"""

from __future__ import annotations

import array
import collections
import ctypes
import json
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

# The agent runs as a script; its module holds only definitions, safe to import here.
from chaoslab.cluster.sim.netns_agent import CLONE_NEWNET, CLONE_NEWUSER, MAX_SOCKETS
from chaoslab.cluster.sim.processes import ManagedProcess, Reaper, spawn, tail
from chaoslab.errors import ClusterError

AGENT_PATH = Path(__file__).with_name("netns_agent.py")
# Where system tools live when an unprivileged user's PATH leaves them out.
SYSTEM_BIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
# Interpreter start, unshare, three ip(8) calls: ~100 ms; a busy 2-core machine can be
# far slower.
AGENT_START_TIMEOUT = 20.0
# One ip/nft command (the agent bounds each at 10 s itself).
REQUEST_TIMEOUT = 15.0
MAX_MESSAGE = 1 << 16
# How many sockets made inside the engine asks for at once.
SOCKET_BATCH = min(16, MAX_SOCKETS)


class NetworkUnavailable(ClusterError):
    """This machine cannot give the run a private network (the reason says why)."""


def find_tool(name: str, path: str | None = None) -> str | None:
    """`name` on PATH, else in the system bin folders an unprivileged PATH may lack."""
    search = os.pathsep.join([path if path is not None else os.environ.get("PATH", os.defpath), *SYSTEM_BIN_DIRS])
    return shutil.which(name, path=search)


class PrivateNetwork:
    """One running agent and the namespaces it made. Thread-safe. A ClientNetwork
    (cluster/network.py): clients reach the run's addresses through it."""

    description = "kernel: kube-proxy's nftables rules in the run's private network namespace"

    def __init__(self, process: ManagedProcess, channel: socket.socket, nft: str, ip: str, log_path: Path | None):
        self._process = process
        self._channel = channel
        self.nft = nft
        self.ip = ip
        self._log_path = log_path
        self._lock = threading.Lock()
        self._spare: collections.deque[int] = collections.deque()
        self._user_fd = -1
        self._net_fd = -1
        self._setns = ctypes.CDLL(None, use_errno=True).setns

    @classmethod
    def start(
        cls,
        python: str,
        env: Mapping[str, str],
        reaper: Reaper | None,
        log_path: Path | None,
    ) -> PrivateNetwork:
        """Make the namespaces; NetworkUnavailable when this machine cannot."""
        if not sys.platform.startswith("linux"):
            raise NetworkUnavailable(f"network namespaces are Linux only (this is {sys.platform})")
        nft, ip = find_tool("nft"), find_tool("ip")
        if nft is None or ip is None:
            missing = " and ".join(name for name, found in (("nft", nft), ("ip", ip)) if found is None)
            raise NetworkUnavailable(f"{missing} not found (Debian: apt-get install nftables iproute2)")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = spawn(
                [python, "-S", str(AGENT_PATH), str(theirs.fileno()), ip],
                env,
                label="network",
                log_path=log_path,
                reaper=reaper,
                pass_fds=(theirs.fileno(),),
            )
        except OSError as exc:
            ours.close()
            raise NetworkUnavailable(f"could not start the network agent: {exc}") from exc
        finally:
            theirs.close()
        network = cls(process, ours, nft, ip, log_path)
        try:
            hello = network._receive(AGENT_START_TIMEOUT)[0]
            if not hello.get("ok"):
                raise NetworkUnavailable(str(hello.get("error") or "the network agent gave up"))
            network._open_namespaces(int(hello["pid"]))
            network.nft_apply("table ip probe { }\ndelete table ip probe\n")  # nft works in there
        except BaseException:
            network.close()
            raise
        return network

    # --- what runs inside -----------------------------------------------------------

    def preexec(self) -> Callable[[], None]:
        """For Popen(preexec_fn=...): the child enters the user, then the network namespace."""
        setns, user_fd, net_fd = self._setns, self._user_fd, self._net_fd

        def enter() -> None:
            if setns(user_fd, CLONE_NEWUSER) != 0 or setns(net_fd, CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"setns into the run's network: {os.strerror(error)}")

        return enter

    def connect(self, address: tuple[str, int], timeout: float) -> socket.socket:
        """A TCP connection to `address` from inside the namespace."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=self._unconnected_socket())
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def _unconnected_socket(self) -> int:
        """A socket made inside, from a stock the agent refills SOCKET_BATCH at a time, so
        a probe does not wait for a round trip to the agent (a busy machine's scheduler
        decides how long that takes)."""
        with self._lock:
            if not self._spare:
                self._send({"op": "socket", "count": SOCKET_BATCH})
                reply, fds = self._receive(REQUEST_TIMEOUT)
                if not reply.get("ok") or not fds:
                    raise OSError(f"the run's network made no socket: {reply.get('error', 'no fd')}")
                self._spare.extend(fds)
            return self._spare.popleft()

    # --- configuration ----------------------------------------------------------------

    def nft_apply(self, ruleset: str) -> None:
        """Load an nft script atomically (nft -f: all of it or nothing)."""
        self.run([self.nft, "-f", "-"], ruleset)

    def run(self, argv: list[str], text: str | None = None) -> str:
        """Run ip/nft inside as the namespace's root and return what it printed;
        ClusterError with its words on failure."""
        with self._lock:
            self._send({"op": "run", "argv": argv, "input": text})
            reply = self._receive(REQUEST_TIMEOUT)[0]
        if not reply.get("ok"):
            raise ClusterError(f"the run's network refused {' '.join(argv[:3])}: {reply.get('error')}")
        return str(reply.get("output") or "")

    @property
    def namespace_id(self) -> str:
        """The network namespace as /proc names it (`net:[4026532179]`), to find what is in it."""
        return os.readlink(f"/proc/self/fd/{self._net_fd}")

    def failure(self) -> str:
        status = self._process.poll()
        if status is None:
            return ""
        return f"the network agent exited ({status}) {tail(self._log_path)}".strip()

    def close(self) -> None:
        """Let the agent go (EOF) and drop the namespace files: the namespace ends with
        the last process in it."""
        try:
            self._channel.close()
        except OSError:
            pass
        with self._lock:
            spare, self._spare = list(self._spare), collections.deque()
        for fd in (self._user_fd, self._net_fd, *spare):
            if fd >= 0:
                os.close(fd)
        self._user_fd = self._net_fd = -1
        self._process.kill()

    # --- the agent's channel --------------------------------------------------------------

    def _open_namespaces(self, pid: int) -> None:
        try:
            self._user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
            self._net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetworkUnavailable(f"could not open the network agent's namespaces: {exc}") from exc

    def _send(self, message: dict[str, object]) -> None:
        try:
            self._channel.send(json.dumps(message).encode())
        except OSError as exc:
            raise ClusterError(f"the run's network is gone: {self.failure() or exc}") from exc

    def _receive(self, timeout: float) -> tuple[dict[str, object], list[int]]:
        self._channel.settimeout(timeout)
        fds = array.array("i")
        try:
            data, ancillary, _, _ = self._channel.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(SOCKET_BATCH * fds.itemsize))
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"the run's network did not answer: {self.failure() or exc}") from exc
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
        if not data:
            raise ClusterError(f"the run's network is gone: {self.failure() or 'the agent closed its end'}")
        try:
            message = json.loads(data)
        except ValueError as exc:
            raise ClusterError(f"the network agent said something unreadable: {data[:80]!r}") from exc
        return message, list(fds)
