"""The container shim of a simulated pod that runs a user's own `command`.

Why it exists: PR_SET_PDEATHSIG (processes.py) takes a pod's first process down with a
SIGKILLed engine, but not the processes *that* one forks (`sh -c "worker & server"`,
gunicorn and its workers): they would be orphaned and keep their ports. On a real node
the container runtime's shim and the cgroup see to that. This shim plays that part for
the simulator: it arms a catchable parent-death signal, starts the command as its child
in the same process group (the "container"), and when the engine dies it SIGKILLs the
whole group, itself included. The built-in app does not fork and runs without it.

It is otherwise transparent: the kubelet's signals go to the whole group, so the
command receives them itself (the shim ignores SIGTERM and SIGINT and waits), and the
shim ends the way its child ended, with the same exit code or the same signal, so the
kubelet's restart logic and `exitCode=`/`signal=` details are unchanged.

Run as `python -S shim.py PROGRAM [ARG...]`; PROGRAM is already resolved to a path by
the kubelet, which reports a missing executable as RunContainerError before starting
anything (as the container runtime does).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

# prctl(2) option number of PR_SET_PDEATHSIG (linux/prctl.h).
PR_SET_PDEATHSIG = 1
# The parent-death signal the shim asks for: catchable, and never sent by the kubelet,
# which only uses SIGTERM, SIGKILL, SIGSTOP and SIGCONT.
PARENT_DIED = signal.SIGUSR1
# What a shell returns when a program exists but cannot be executed.
EXIT_CANNOT_EXECUTE = 126


def _kill_container(*_: object) -> None:
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if not argv:
        print("shim: no command given", file=sys.stderr)
        return 2
    parent = os.getppid()
    signal.signal(PARENT_DIED, _kill_container)
    # The spawner armed PDEATHSIG=SIGKILL before exec (kept across exec); trade it for
    # the catchable one, then check the parent did not die in between.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, PARENT_DIED, 0, 0, 0)
    if os.getppid() != parent:
        _kill_container()
    for graceful in (signal.SIGTERM, signal.SIGINT):
        # A handler, not SIG_IGN: handlers are reset by exec, so the child gets defaults.
        signal.signal(graceful, lambda *_: None)

    child = os.fork()
    if child == 0:
        signal.signal(PARENT_DIED, signal.SIG_DFL)
        try:
            os.execv(argv[0], argv)
        except OSError as exc:
            os.write(2, f"shim: cannot execute {argv[0]}: {exc.strerror}\n".encode())
        os._exit(EXIT_CANNOT_EXECUTE)

    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        # End by the same signal, so the kubelet sees `signal=SIGTERM` and not an exit code.
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
