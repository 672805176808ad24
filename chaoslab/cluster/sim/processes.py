"""OS processes for simulated pods and the Service proxy, and the loopback ports they use.

Why it exists: "nothing left behind" is a hard promise of the simulator, and it rests on
four mechanisms gathered here so they are applied the same way to every process:
- every process leads its own process group (`start_new_session`), so a pod's container
  is the whole group, as a container is its whole cgroup: signals go to the group;
- every process gets PR_SET_PDEATHSIG=SIGKILL, so even a SIGKILLed engine takes its pods
  with it. The signal fires when the *thread* that forked the child exits, so the
  simulator spawns only from its long-lived control-plane thread;
- every process group is registered with the cluster's reaper (chaoslab/reaper.py), which kills
  what is still registered when the engine's end of a pipe closes: the defence that
  needs no signal, for groups a signal cannot help (stopped by a hung node, or whose
  first process was still starting when the engine died);
- ports are chosen below the kernel's ephemeral range, so a client's outgoing connection
  can never occupy the port of a pod that is restarting in place (a pod keeps its "IP",
  here its port, across container restarts, as on a real node).
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from chaoslab.errors import ClusterError
from chaoslab.reaper import Reaper

# prctl(2) option number of PR_SET_PDEATHSIG (linux/prctl.h).
PR_SET_PDEATHSIG = 1
# Where Linux picks ephemeral ports when /proc does not say (its default range).
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)
# How many ports below the ephemeral range the simulator may hand out: far more than 50
# pods need, while staying clear of the well-known and registered low ports.
PORT_WINDOW = 10_000


def ephemeral_port_range(proc_file: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's ephemeral port range (low, high)."""
    try:
        low, high = (int(part) for part in proc_file.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE
    return low, high


class PortAllocator:
    """Free loopback ports outside the ephemeral range, never handed out twice at once."""

    def __init__(self, rng: random.Random, host: str = "127.0.0.1") -> None:
        low, _ = ephemeral_port_range()
        self.host = host
        self.first = max(1024, low - PORT_WINDOW)
        self.last = low - 1
        if self.last - self.first < 100:
            raise ClusterError(
                f"the ephemeral port range starts at {low}: no room below it for simulated pods "
                "(raise net.ipv4.ip_local_port_range's lower bound)"
            )
        self._rng = rng
        self._next = rng.randint(self.first, self.last)
        self._taken: set[int] = set()

    def allocate(self) -> int:
        span = self.last - self.first + 1
        for _ in range(span):
            port = self._next
            self._next = self.first + (self._next + 1 - self.first) % span
            if port in self._taken or not self._is_free(port):
                continue
            self._taken.add(port)
            return port
        raise ClusterError(f"no free loopback port between {self.first} and {self.last} for a simulated pod")

    def release(self, port: int) -> None:
        self._taken.discard(port)

    def _is_free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # The pods bind with SO_REUSEADDR, so a port in TIME_WAIT is usable by them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, port))
            except OSError:
                return False
        return True


def _pdeathsig_preexec(parent_pid: int, enter: Callable[[], None] | None = None) -> Callable[[], None]:
    """A preexec_fn arming PDEATHSIG; resolved in the parent so the child only calls it.

    `enter` (the run's private network, netns.py) runs first: entering a user namespace
    changes the process's credentials, and PDEATHSIG is armed after that."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        if enter is not None:
            enter()
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl: die now
            os._exit(1)

    return arm


class ManagedProcess:
    """One process group we started; signals go to the whole group."""

    def __init__(self, popen: subprocess.Popen[bytes], label: str, reaper: Reaper | None = None) -> None:
        self.popen = popen
        self.pgid = popen.pid  # start_new_session: the child leads its own group
        self.label = label
        self.stopped = False
        self._reaper = reaper
        if reaper is not None:
            reaper.register(self.pgid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def signal_group(self, signum: int) -> None:
        """Send `signum` to every process of the group; a group already gone is fine."""
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            self._forget()
            return
        if signum == signal.SIGSTOP:
            self.stopped = True
        elif signum == signal.SIGCONT:
            self.stopped = False
        elif signum == signal.SIGKILL and self.popen.poll() is not None:
            # Every member is dead and the leader reaped: the group id may be reused.
            self._forget()

    def kill(self, wait: float = 5.0) -> int | None:
        """SIGKILL the whole group and reap the leader; returns its exit status."""
        self.signal_group(signal.SIGKILL)
        self.stopped = False
        try:
            status = self.popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        self._forget()
        return status

    def _forget(self) -> None:
        if self._reaper is not None:
            self._reaper.forget(self.pgid)
            self._reaper = None


def spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    label: str,
    log_path: Path | None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = None,
    reaper: Reaper | None = None,
    enter: Callable[[], None] | None = None,
    pass_fds: Sequence[int] = (),
) -> ManagedProcess:
    """Start `argv` in its own process group with PDEATHSIG armed, registered with `reaper`;
    inside the run's private network when `enter` is given (netns.PrivateNetwork.preexec).

    Output goes to `log_path` (appended, so restarts of a container share one log) or is
    discarded. Raises OSError when the program cannot be started.
    """
    log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=stdin,
            stdout=stdout if stdout is not None else (log if log is not None else subprocess.DEVNULL),
            stderr=log if log is not None else subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_pdeathsig_preexec(os.getpid(), enter),  # noqa: PLW1509 - see module docstring
            close_fds=True,
            pass_fds=tuple(pass_fds),
        )
    finally:
        if log is not None:
            log.close()
    return ManagedProcess(popen, label, reaper)


def describe_exit(status: int | None) -> str:
    """`exitCode=1` or `signal=SIGKILL`, the way events.csv details an exit."""
    if status is None:
        return "exitCode=unknown"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = str(-status)
        return f"signal={name}"
    return f"exitCode={status}"


def tail(path: Path | None, lines: int = 3, limit: int = 400) -> str:
    """The last lines of a log file, for error messages; empty when there is none."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    last = " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
    return last[-limit:]
