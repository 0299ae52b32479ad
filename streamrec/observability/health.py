"""Liveness and readiness, as plain values the HTTP server reports.

Liveness (/healthz) answers "is the loop still turning?": the loop calls ``Heartbeat.beat()``
on every poll, batch stage and retry, and the process counts as alive while the last beat is
younger than ``timeout_seconds``. A process stuck in a deadlock stops beating and an
orchestrator restarts it; a process that retries a database outage keeps beating and is
left alone.

Readiness (/readyz) answers "should traffic and alerts count on this process now?": every
named check must pass (for a consumer: partitions assigned, database reachable).

>>> clock = iter([0.0, 1.0, 100.0]).__next__
>>> heartbeat = Heartbeat(timeout_seconds=30.0, clock=clock)
>>> heartbeat.alive()
True
>>> heartbeat.alive()
False
>>> ready = Readiness([ReadinessCheck("database", lambda: None),
...                    ReadinessCheck("partitions", lambda: "no partitions assigned")])
>>> ready.problems()
['partitions: no partitions assigned']
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# A batch that takes longer than this without a single beat is treated as a hung loop.
DEFAULT_LIVENESS_TIMEOUT_SECONDS = 120.0


class Heartbeat:
    """The time of the loop's last sign of life; safe to use from any thread."""

    def __init__(
        self,
        timeout_seconds: float = DEFAULT_LIVENESS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat = clock()

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()

    def seconds_since_last_beat(self) -> float:
        with self._lock:
            last = self._last_beat
        return self._clock() - last

    def alive(self) -> bool:
        return self.seconds_since_last_beat() <= self.timeout_seconds


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """One named condition: ``check()`` returns None when it holds, else the reason it does
    not. An exception raised by the check counts as not ready, with its message."""

    name: str
    check: Callable[[], str | None]


class Readiness:
    """All of a process's readiness checks; ready when none reports a problem."""

    def __init__(self, checks: Sequence[ReadinessCheck] = ()) -> None:
        self._checks = list(checks)

    def problems(self) -> list[str]:
        found = []
        for named in self._checks:
            try:
                problem = named.check()
            except Exception as error:  # a failing probe must answer "not ready", not crash
                problem = f"{type(error).__name__}: {error}"
            if problem is not None:
                found.append(f"{named.name}: {problem}")
        return found
