"""A stop requested by SIGTERM or SIGINT reaches the command even when its handler happens to
run where Python swallows exceptions (a finaliser, a weak-reference callback)."""

from __future__ import annotations

import os
import signal
import sys
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


class ClosedSocketWhileFinalised:
    """Raises EBADF while it is finalised, as kafka-python's selector does when a client's
    socket was closed before its pending wait was finalised."""

    def __del__(self) -> None:
        raise OSError(9, "Bad file descriptor")


def test_a_closed_socket_met_while_stopping_is_said_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(StopRequested), stopping_cleanly_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100_000):
                pass
        finally:
            ClosedSocketWhileFinalised()  # finalised at once, while the stop unwinds
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert error.count("\n") == 1
    assert "while stopping, ignored OSError(9, 'Bad file descriptor')" in error


def test_a_closed_socket_met_before_any_stop_goes_to_the_previous_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[BaseException | None] = []
    monkeypatch.setattr(
        sys, "unraisablehook", lambda unraisable: reported.append(unraisable.exc_value)
    )
    with stopping_cleanly_on_signals():
        ClosedSocketWhileFinalised()
    assert [type(error) for error in reported] == [OSError]
