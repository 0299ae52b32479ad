"""Commands that start processes stop them all when they are stopped themselves.

``streamrec demo`` and the benchmarks start a local broker, consumer processes and threads,
each undone by a context manager or a ``finally`` on the way out. Ctrl-C (SIGINT) raises
KeyboardInterrupt, which takes that way out; SIGTERM, by default, ends the process at once
and leaves the broker and the consumers running. ``stopping_cleanly_on_signals`` makes both
signals raise ``StopRequested`` (a KeyboardInterrupt) in the main thread, once: the way out
runs, and further signals while it runs are ignored, so a second Ctrl-C cannot cut the
cleanup short and orphan what the first one was stopping. The command then exits with one
line and the status a shell gives a process ended by that signal (130 for SIGINT, 143 for
SIGTERM). A handler may happen to run inside a finaliser or a weak-reference callback
(importlib's module locks have one), where Python prints the exception as ignored and goes
on; such a swallowed stop is raised again, so the command still stops. While a stop unwinds,
a finaliser of a client being torn down may find its socket already closed (kafka-python's
selector raises EBADF from a generator's ``finally``): Python would print that as a traceback,
which is said in one line instead.

>>> import os, signal
>>> with stopping_cleanly_on_signals():
...     try:
...         os.kill(os.getpid(), signal.SIGTERM)
...         for _ in range(1000):  # the handler runs between two bytecodes
...             pass
...     except StopRequested as stop:
...         print(stop, stop.exit_status)
stopped by SIGTERM 143
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

# The signals a service manager, a container runtime or a terminal sends to stop a command.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A shell reports a process ended by signal N with status 128 + N.
SIGNAL_EXIT_STATUS_BASE = 128
# How long after a swallowed stop the signal is sent again.
RESEND_SECONDS = 0.01


class StopRequested(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived: the command unwinds, stopping what it started."""

    def __init__(self, signal_number: int) -> None:
        self.signal_number = signal_number
        self.signal_name = signal.Signals(signal_number).name
        super().__init__(f"stopped by {self.signal_name}")

    @property
    def exit_status(self) -> int:
        return SIGNAL_EXIT_STATUS_BASE + self.signal_number


@contextlib.contextmanager
def stopping_cleanly_on_signals() -> Iterator[None]:
    """While the block runs, the first SIGTERM or SIGINT raises StopRequested in the main
    thread, and later ones are ignored (said on stderr); the previous handlers come back
    afterwards. Outside the main thread, where Python cannot set handlers, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def request_stop(signal_number: int, _: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            print(
                f"streamrec: {signal.Signals(signal_number).name} again; still stopping what "
                "this command started",
                file=sys.stderr,
                flush=True,
            )
            return
        stopping = True
        raise StopRequested(signal_number)

    previous_hook = sys.unraisablehook

    def deliver_again_if_swallowed(unraisable: Any) -> None:
        nonlocal stopping
        if isinstance(unraisable.exc_value, StopRequested):
            # The stop never unwound anything: the signal is sent again a moment later,
            # from another thread, so that its handler runs once this hook and the
            # finaliser have returned (an exception raised in here would be swallowed too).
            stopping = False
            again = threading.Timer(
                RESEND_SECONDS, os.kill, (os.getpid(), unraisable.exc_value.signal_number)
            )
            again.daemon = True
            again.start()
            return
        if stopping and isinstance(unraisable.exc_value, OSError):
            print(
                f"streamrec: while stopping, ignored {unraisable.exc_value!r} "
                f"in {unraisable.object!r}",
                file=sys.stderr,
                flush=True,
            )
            return
        previous_hook(unraisable)

    previous = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    sys.unraisablehook = deliver_again_if_swallowed
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        for number, handler in previous.items():
            signal.signal(number, handler)
