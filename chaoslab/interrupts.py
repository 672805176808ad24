"""Ctrl-C and SIGTERM handling that can never skip teardown.

The first SIGINT/SIGTERM raises `Interrupted` in the main thread, so whatever phase is
running unwinds through its `finally` blocks. Teardown itself runs inside `shield()`:
a signal that arrives there (the first one, or a second Ctrl-C) is acknowledged and
recorded instead of raised, so it cannot cut the cleanup short; the run is still marked
aborted afterwards. Teardown is bounded by timeouts, so a shielded section always ends.

An exception raised where Python cannot pass it on (a weakref callback or `__del__`
that the garbage collector runs in the main thread) is printed as "Exception ignored"
and dropped. The guard catches its own `Interrupted` there (sys.unraisablehook), prints
nothing, and delivers the signal again a moment later, so a Ctrl-C is never lost and
never shown as a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from chaoslab.errors import Interrupted

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long after a dropped Interrupted the signal comes again: long enough for the
# garbage collector's callback to have returned.
REDELIVERY_DELAY_S = 0.05


class InterruptGuard:
    """Turns the first interrupt into an exception and shields teardown from the rest."""

    def __init__(self, notify: Callable[[str], None] = lambda message: None) -> None:
        self._notify = notify
        self._shield_depth = 0
        self._previous: dict[int, object] = {}
        self.received: str | None = None
        self.count = 0
        self._redeliver: int | None = None
        self._previous_unraisable_hook: Callable[..., object] | None = None

    def install(self) -> InterruptGuard:
        """Install the handlers (main thread only); `uninstall` puts the old ones back."""
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._previous_unraisable_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        return self

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
        if self._previous_unraisable_hook is not None:
            sys.unraisablehook = self._previous_unraisable_hook
            self._previous_unraisable_hook = None

    def __enter__(self) -> InterruptGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._redeliver == signum:
            # Our own second delivery of a signal whose Interrupted was dropped.
            self._redeliver = None
            if not self._shield_depth:
                raise Interrupted(f"interrupted by {self.received or name}")
            return
        self.count += 1
        first = self.received is None
        if first:
            self.received = name
        if self._shield_depth:
            self._notify(
                f"{name} received: cleaning up (workload, nodes, processes) before exiting; "
                "this is bounded and cannot be skipped"
            )
            return
        if first:
            raise Interrupted(f"interrupted by {name}")
        self._notify(f"{name} received again: still cleaning up")

    def _unraisable(self, unraisable: object) -> None:
        """sys.unraisablehook: our Interrupted dropped in a callback comes again."""
        error = getattr(unraisable, "exc_value", None)
        if isinstance(error, Interrupted) and self.received is not None:
            signum = signal.Signals[self.received]
            self._redeliver = signum
            threading.Timer(REDELIVERY_DELAY_S, os.kill, (os.getpid(), signum)).start()
            return
        if self._previous_unraisable_hook is not None:
            self._previous_unraisable_hook(unraisable)

    @contextmanager
    def shield(self) -> Iterator[None]:
        """Defer interrupts for the duration of the block (used around teardown)."""
        self._shield_depth += 1
        try:
            yield
        finally:
            self._shield_depth -= 1

    def raise_if_interrupted(self) -> None:
        """Raise `Interrupted` if a signal arrived while shielded."""
        if self.received is not None and not self._shield_depth:
            raise Interrupted(f"interrupted by {self.received}")
