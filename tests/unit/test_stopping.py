"""A stop requested by SIGTERM or SIGINT reaches the command even when its handler happens to
run where Python swallows exceptions (a finaliser, a weak-reference callback)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from streamrec.cli.stopping import StopRequested, stopping_cleanly_on_signals


class SignalledWhileFinalised:
    """Receives SIGTERM while it is being finalised: the handler runs inside ``__del__``,
    whose exception Python prints as ignored instead of raising it."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # the handler runs between two of these bytecodes
            pass


def test_a_stop_swallowed_by_a_finaliser_is_raised_again() -> None:
    with pytest.raises(StopRequested) as stop, stopping_cleanly_on_signals():
        SignalledWhileFinalised()  # finalised at once: no reference kept
        time.sleep(5)  # the signal sent again interrupts this wait
    assert stop.value.exit_status == 128 + signal.SIGTERM


def test_a_delivered_stop_is_raised_once() -> None:
    raised = 0
    with stopping_cleanly_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100_000):
                pass
        except StopRequested:
            raised += 1
        for _ in range(100_000):
            pass
    assert raised == 1
