"""The interrupt guard: the first signal raises, teardown is shielded from later ones."""

from __future__ import annotations

import os
import signal

import pytest

from chaoslab.errors import Interrupted
from chaoslab.interrupts import InterruptGuard


def test_first_signal_raises_interrupted() -> None:
    with InterruptGuard() as guard:
        with pytest.raises(Interrupted, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next bytecode
        assert guard.received == "SIGTERM"


def test_signals_inside_shield_are_deferred_then_raised() -> None:
    notes: list[str] = []
    with InterruptGuard(notify=notes.append) as guard:
        with guard.shield():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            cleaned_up = True  # still running: the shield did not raise
        assert cleaned_up and guard.count == 2
        assert len(notes) == 2 and "cleaning up" in notes[0]
        with pytest.raises(Interrupted, match="SIGINT"):
            guard.raise_if_interrupted()


def test_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with InterruptGuard():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before
