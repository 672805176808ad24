"""The container shim of a simulated pod that runs a user's own `command`.

Why it exists: PR_SET_PDEATHSIG (processes.py) takes a pod's first process down with a
SIGKILLed engine, but not the processes *that* one forks (`sh -c "worker & server"`,
gunicorn and its workers): they would be orphaned and keep their ports. On a real node
the container runtime's shim and the cgroup see to that. This shim plays that part for
the simulator: it arms a catchable parent-death signal, starts the command as its child
in the same process group (the "container"), and when the engine dies it SIGKILLs the
whole group, itself included. The built-in app does not fork and runs without it.

It is otherwise transparent: the kubelet's signals go to the whole group, so the
command receives them itself (the shim swallows SIGTERM and SIGINT and waits), and the
shim ends the way its child ended, with the same exit code or the same signal, so the
kubelet's restart logic and `exitCode=`/`signal=` details are unchanged.

No signal can be lost: the shim blocks the signals it waits for and takes them with
sigwaitinfo(2), so a parent-death signal that arrives at any moment (while it forks,
just before it waits) stays pending until it is read. (A Python handler cannot promise
that: a signal landing between the interpreter's last check and a blocking waitpid(2)
runs its handler only when waitpid returns, which for a server is never; that is how an
earlier shim outlived a SIGKILLed engine.) The engine's pid comes on the command line,
so an engine that died while the shim was still starting is noticed too. A stopped
shim (hung node) can act on nothing: the cluster's reaper (reaper.py) covers that.

Run as `python -S shim.py ENGINE_PID PROGRAM [ARG...]`; PROGRAM is already resolved to
a path by the kubelet, which reports a missing executable as RunContainerError before
starting anything (as the container runtime does).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

# prctl(2) option number of PR_SET_PDEATHSIG (linux/prctl.h).
PR_SET_PDEATHSIG = 1
# The parent-death signal the shim asks for: never sent by the kubelet, which only uses
# SIGTERM, SIGKILL, SIGSTOP and SIGCONT.
PARENT_DIED = signal.SIGUSR1
# What the kubelet sends for a graceful stop; meant for the command, not the shim.
GRACEFUL = (signal.SIGTERM, signal.SIGINT)
# What a shell returns when a program exists but cannot be executed.
EXIT_CANNOT_EXECUTE = 126


def _kill_container() -> None:
    os.killpg(0, signal.SIGKILL)


def _usage() -> int:
    print("usage: shim.py ENGINE_PID PROGRAM [ARG...]", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        return _usage()
    engine, command = int(argv[0]), argv[1:]
    waited = {PARENT_DIED, signal.SIGCHLD, *GRACEFUL}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    # The spawner armed PDEATHSIG=SIGKILL before exec; trade it for the one we wait for,
    # then make sure the engine did not die before that (or before this process ran).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, PARENT_DIED, 0, 0, 0)
    if os.getppid() != engine:
        _kill_container()

    child = os.fork()
    if child == 0:
        # The container starts with no signal blocked (the mask survives exec).
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        try:
            os.execv(command[0], command)
        except OSError as exc:
            os.write(2, f"shim: cannot execute {command[0]}: {exc.strerror}\n".encode())
        os._exit(EXIT_CANNOT_EXECUTE)

    while True:
        received = signal.sigwaitinfo(waited).si_signo
        if received == PARENT_DIED:
            _kill_container()
        if received == signal.SIGCHLD:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid == child:
                break
    if os.WIFSIGNALED(status):
        # End by the same signal, so the kubelet sees `signal=SIGTERM` and not an exit code.
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.kill(os.getpid(), signum)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
