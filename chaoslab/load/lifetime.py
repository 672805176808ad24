"""Tie a child process's life to its parent's, so no Locust process outlives the engine.

The engine stops Locust on every path it controls (success, errors, Ctrl-C, SIGTERM); this
covers the one it cannot: the engine killed with SIGKILL. Linux `prctl(PR_SET_PDEATHSIG)`
asks the kernel to signal the child when its parent dies. The engine sets it on the
Locust process it starts; our listener sets it in each worker Locust forks with
`--processes`, so the workers die with their master.

Caveat (Linux semantics): the signal fires when the *thread* that started the child
exits, so start Locust from a long-lived thread (the engine's main thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable

# From <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return ctypes.CDLL(name, use_errno=True)


class ParentDeathSignal:
    """A callable for `subprocess.Popen(preexec_fn=...)` (or to call in a fresh child) that
    makes the kernel send `sig` to this process when its parent dies.

    libc is looked up when the object is made, in the parent, so the child only makes one
    system call between fork and exec. Off Linux it does nothing. `before` runs first (the
    cluster's client network, cluster/network.py): entering a user namespace changes the
    process's credentials, and the signal is armed after that.
    """

    def __init__(self, sig: signal.Signals = signal.SIGKILL, before: Callable[[], None] | None = None) -> None:
        self._sig = int(sig)
        self._before = before
        self._libc = _load_libc() if os.uname().sysname == "Linux" else None

    def __call__(self) -> None:
        if self._before is not None:
            self._before()
        if self._libc is None:
            return
        if self._libc.prctl(_PR_SET_PDEATHSIG, self._sig, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
