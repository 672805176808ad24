"""The interrupt guard: the first signal raises, teardown is shielded from later ones."""

from __future__ import annotations

import os
import signal
import sys
import time
import weakref

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


class _Referent:
    pass


def test_an_interrupt_dropped_inside_a_garbage_collector_callback_comes_again(capfd) -> None:
    # The garbage collector runs weakref callbacks in the main thread; an exception raised
    # there is printed as "Exception ignored ..." and dropped. A signal landing in one
    # must still interrupt the run, and print no traceback.
    def callback(_ref: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises here, inside the callback
        for _ in range(1000):
            pass

    hook = sys.unraisablehook
    with InterruptGuard() as guard:
        referent = _Referent()
        ref = weakref.ref(referent, callback)  # noqa: F841 - kept alive until the referent goes
        with pytest.raises(Interrupted, match="SIGTERM"):
            del referent  # the callback runs now and drops the first Interrupted
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)  # the second delivery lands here
        assert guard.received == "SIGTERM"
    assert "Traceback" not in capfd.readouterr().err
    assert sys.unraisablehook is hook
