"""The one process that owns a sim run's private network: it makes it, then serves it.

Why it exists: an unprivileged engine cannot enter a network namespace it did not make
inside a user namespace of its own (setns(2) wants CAP_SYS_ADMIN in the caller's user
namespace too), and Python 3.11 has no os.unshare. So this small stdlib script, started
by the engine as a fresh single-threaded process, calls unshare(CLONE_NEWUSER |
CLONE_NEWNET), maps the engine's user to root inside (as `unshare -Urn` does), brings
`lo` up with routes for the pod and Service ranges, and then serves the engine over a
SOCK_SEQPACKET socket (one JSON request per message):

  {"op": "run", "argv": ["nft", "-f", "-"], "input": "..."}  -> {"ok": true, "output": "..."} | {"ok": false, "error": "..."}
  {"op": "socket", "count": N}                               -> {"ok": true} with N TCP sockets' fds
                                                                (SCM_RIGHTS), made inside the namespace

`run` is for ip(8) and nft(8): as root of the user namespace they hold CAP_NET_ADMIN
over this network and nothing else. `socket` lets the engine's own threads (the
kubelet's probes, the availability probe) connect from inside: a socket belongs to the
namespace it was made in, whoever holds it. Processes that must live inside (pods,
Locust) are forked by the engine and enter with setns(2) through /proc/<this pid>/ns/,
which the engine opens once this process says it is ready.

It exits on EOF (the engine closed its end, or died): the namespace then lives only as
long as a process inside it or the engine's open namespace files, and the cluster's
reaper kills those processes. Nothing of it can outlive the run.

Run as `python -S netns_agent.py FD IP`, FD being its end of the socketpair and IP the
path of ip(8) (often in /usr/sbin, off an unprivileged user's PATH); the first
message it sends is {"ok": true, "pid": ...} or {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import array
import ctypes
import json
import os
import socket
import subprocess
import sys

# sched.h
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
# The ranges the namespace routes over its loopback: kubeadm's defaults for the Pod
# network (--pod-network-cidr, as flannel's docs use it) and the Service range
# (--service-cidr), so that addresses look as they do on a cluster.
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/12"
# Where clients connect from (the route's preferred source).
CLIENT_IP = "127.0.0.1"
# Most sockets handed over in one message (SCM_RIGHTS takes up to 253 fds).
MAX_SOCKETS = 64
# Largest request (an nft ruleset for many Services and endpoints).
MAX_MESSAGE = 1 << 20
# How long one ip/nft command may take before it counts as failed.
COMMAND_TIMEOUT = 10.0


def _unshare() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {os.strerror(errno)}")
    # setgroups must be denied before an unprivileged process may write gid_map.
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"0 {gid} 1")


def _run(argv: list[str], text: str | None = None) -> tuple[str, str]:
    """Run one command: (what it printed, '') on success, else ('', what it said)."""
    try:
        done = subprocess.run(
            argv, input=text, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"{argv[0]}: {exc}"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return "", f"{' '.join(argv[:3])}: exit {done.returncode}: {' | '.join(said[-3:])}"
    return done.stdout, ""


def _set_up(ip: str) -> str:
    for argv in (
        [ip, "link", "set", "lo", "up"],
        # Clients (Locust, probes) speak from 127.0.0.1, an address no pod has: else
        # the kernel picks a pod's IP as their source, and a fault that cuts that pod
        # off would cut off the answers to every client too.
        [ip, "route", "add", POD_CIDR, "dev", "lo", "src", CLIENT_IP],
        [ip, "route", "add", SERVICE_CIDR, "dev", "lo", "src", CLIENT_IP],
    ):
        _, problem = _run(argv)
        if problem:
            return problem
    return ""


def _send(channel: socket.socket, message: dict[str, object], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        channel.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        channel.send(data)


def serve(channel: socket.socket) -> None:
    while True:
        try:
            data = channel.recv(MAX_MESSAGE)
        except OSError:
            return
        if not data:
            return  # the engine closed its end, or died
        try:
            request = json.loads(data)
            op = request["op"]
        except (ValueError, KeyError, TypeError):
            _send(channel, {"ok": False, "error": "bad request"})
            continue
        if op == "socket":
            count = max(1, min(int(request.get("count", 1)), MAX_SOCKETS))
            made = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
            try:
                _send(channel, {"ok": True}, [each.fileno() for each in made])
            finally:
                for each in made:
                    each.close()
        elif op == "run":
            output, problem = _run([str(part) for part in request["argv"]], request.get("input"))
            _send(channel, {"ok": not problem, "error": problem, "output": output[: MAX_MESSAGE // 2]})
        else:
            _send(channel, {"ok": False, "error": f"unknown op {op!r}"})


def main(argv: list[str]) -> int:
    channel = socket.socket(fileno=int(argv[1]))
    try:
        _unshare()
    except OSError as exc:
        _send(channel, {"ok": False, "error": str(exc)})
        return 1
    problem = _set_up(argv[2])
    if problem:
        _send(channel, {"ok": False, "error": problem})
        return 1
    _send(channel, {"ok": True, "pid": os.getpid()})
    serve(channel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
