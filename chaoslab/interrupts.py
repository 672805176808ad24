"""Ctrl-C and SIGTERM handling that can never skip teardown.

The first SIGINT/SIGTERM raises `Interrupted` in the main thread, so whatever phase is
running unwinds through its `finally` blocks. Teardown itself runs inside `shield()`:
a signal that arrives there (the first one, or a second Ctrl-C) is acknowledged and
recorded instead of raised, so it cannot cut the cleanup short; the run is still marked
aborted afterwards. Teardown is bounded by timeouts, so a shielded section always ends.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from chaoslab.errors import Interrupted

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    """Turns the first interrupt into an exception and shields teardown from the rest."""

    def __init__(self, notify: Callable[[str], None] = lambda message: None) -> None:
        self._notify = notify
        self._shield_depth = 0
        self._previous: dict[int, object] = {}
        self.received: str | None = None
        self.count = 0

    def install(self) -> InterruptGuard:
        """Install the handlers (main thread only); `uninstall` puts the old ones back."""
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def __enter__(self) -> InterruptGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
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
