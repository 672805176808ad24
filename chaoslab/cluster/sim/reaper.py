"""The reaper of a simulated cluster: kills what a dead engine left running.

Why it exists: PR_SET_PDEATHSIG takes a pod's first process down with a SIGKILLed engine,
and the container shim (shim.py) turns it into a kill of the pod's whole process group.
Both are signals, and a signal cannot help a process group that is stopped (a hung node
or a `container-kill` with SIGSTOP freezes the group, and a frozen shim cannot act), nor
one whose first process was still starting. This process is the line of defence that
does not depend on signals: the engine tells it every process group it starts and every
one it has finished with, over a pipe that only the engine holds open. When the engine
dies, however it dies, the kernel closes that pipe; the reaper reads end-of-file,
SIGKILLs every group still registered (SIGKILL reaches stopped processes too), removes
the cluster's temporary folder, and exits. On a clean close the engine has already
killed and forgotten every group, so the reaper finds nothing to do.

It runs in a session of its own (no terminal's Ctrl-C reaches it) and is never
signalled by the simulated kubelet; it is not armed with PDEATHSIG, since it must
outlive the engine by the moment it takes to clean up.

Protocol, one line per message on standard input: `+PGID` (a group was started),
`-PGID` (the group is gone: every member killed and its leader reaped). Run as
`python -S reaper.py [--remove DIR]`; standard library only, like the other processes
of the simulator.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys


def _kill(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def main(argv: list[str]) -> int:
    remove = argv[1] if len(argv) == 2 and argv[0] == "--remove" else None
    # SIGTERM (someone stopping the reaper on purpose) cleans up as end-of-file does.
    signal.signal(signal.SIGTERM, lambda *_: sys.stdin.close())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    try:
        for line in sys.stdin:
            line = line.strip()
            if len(line) < 2 or not line[1:].isdigit():
                continue
            pgid = int(line[1:])
            if line[0] == "+":
                groups.add(pgid)
            elif line[0] == "-":
                groups.discard(pgid)
    except (OSError, ValueError):
        pass  # standard input closed under us: the same as end-of-file
    for pgid in sorted(groups):
        _kill(pgid)
    if remove is not None:
        shutil.rmtree(remove, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
