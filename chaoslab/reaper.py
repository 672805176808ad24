"""The reaper: kills what a dead engine left running and removes its scratch folder.

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
killed and forgotten every group, so the reaper finds nothing to do. The report's image
export uses one too, for the scratch folder of its Chromium.

It runs in a session of its own (no terminal's Ctrl-C reaches it) and is never
signalled by the simulated kubelet; it is not armed with PDEATHSIG, since it must
outlive the engine by the moment it takes to clean up.

Protocol, one line per message on standard input: `+PGID` (a group was started),
`-PGID` (the group is gone: every member killed and its leader reaped), `bye` (a clean
close; end-of-file without it means the engine died). This file is
both sides: `Reaper`, the engine's handle, and `main`, the process it starts as
`python -S reaper.py [--remove DIR]...` (standard library only, like the simulator's
other processes).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

# How long close() waits for the reaper to finish (it only kills what is left and
# removes a folder).
REAPER_EXIT_TIMEOUT = 10.0
# After removing its folders, how long nothing may write there again before the reaper
# is done, and the most it waits for that (a dying browser settles within a second).
QUIET_SECONDS = 1.0
REMOVE_LIMIT_SECONDS = 8.0
# What a closing engine says last: its processes are gone, nothing is dying.
GOODBYE = "bye"


class Reaper:
    """The engine's end of the reaper process (reaper.py): registers and forgets groups.

    `remove`: folders the reaper deletes once the engine is gone (the cluster's
    temporary folder), so a SIGKILLed engine leaves no files either. Thread-safe: groups
    are registered on the control-plane thread and may be forgotten from a closing one.
    """

    def __init__(self, python: str = sys.executable, remove: Sequence[Path] = ()) -> None:
        argv = [python, "-S", str(Path(__file__).resolve())]
        for folder in remove:
            argv += ["--remove", str(folder)]
        self._lock = threading.Lock()
        # Its own session, no PDEATHSIG: it must outlive the engine to do its work.
        self._popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True
        )
        assert self._popen.stdin is not None
        self._fd = self._popen.stdin.fileno()  # pipes from Popen are close-on-exec: no pod inherits it

    @property
    def pid(self) -> int:
        return self._popen.pid

    def register(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self, timeout: float = REAPER_EXIT_TIMEOUT) -> None:
        """Goodbye and end-of-file for the reaper, then wait for it; idempotent."""
        with self._lock:
            stdin = self._popen.stdin
            if stdin is not None and not stdin.closed:
                try:
                    os.write(self._fd, f"{GOODBYE}\n".encode())
                    stdin.close()
                except OSError:
                    pass  # the reaper is already gone
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()

    def _send(self, line: str) -> None:
        with self._lock:
            stdin = self._popen.stdin
            if stdin is None or stdin.closed:
                return
            try:
                os.write(self._fd, line.encode())  # one short write: atomic on a pipe, unbuffered
            except OSError:
                pass  # the reaper was killed from outside; PDEATHSIG and the shim remain


def _kill(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def main(argv: list[str]) -> int:
    remove = [folder for option, folder in zip(argv[::2], argv[1::2]) if option == "--remove"]
    # SIGTERM (someone stopping the reaper on purpose) cleans up as end-of-file does.
    signal.signal(signal.SIGTERM, lambda *_: sys.stdin.close())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    goodbye = False
    try:
        for line in sys.stdin:
            line = line.strip()
            if line == GOODBYE:
                goodbye = True
                break
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
    if goodbye:  # a clean close: nothing is dying that could write there again
        for folder in remove:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        _remove_until_quiet(remove)
    return 0


def _remove_until_quiet(folders: list[str]) -> None:
    """Remove the folders, and again if something writes there while it dies (Chromium
    rewrites its profile when its pipe to the dead engine closes), until none has
    reappeared for QUIET_SECONDS or REMOVE_LIMIT_SECONDS have passed."""
    deadline = time.monotonic() + REMOVE_LIMIT_SECONDS
    quiet_since = time.monotonic()
    while folders and time.monotonic() < deadline:
        present = [folder for folder in folders if os.path.lexists(folder)]
        for folder in present:
            shutil.rmtree(folder, ignore_errors=True)
        if present:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
