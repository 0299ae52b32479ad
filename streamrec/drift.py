"""Drift of the stream, seen through the prequential hit indicator and river's ADWIN.

For every event the consumers ask, before applying it: was this item in the user's latest
published top-N? The answer (1 or 0) feeds ADWIN, which keeps a window of recent answers
and cuts its older part when the two parts' means differ beyond chance. A cut where the hit
rate FELL means the model no longer predicts what users do: a signal to fine-tune early.
A rise is not a signal (the model got better, or users got easier). Signals are rate-limited
here too, so that a detector on a long drift does not flood the control topic; the trainer
applies settings.trainer.drift_min_interval_seconds again across all consumers.

>>> import numpy as np
>>> random = np.random.default_rng(0)
>>> detector = HitRateDriftDetector(clock=lambda: 0.0)
>>> before = [detector.learn_one(hit) for hit in random.random(3000) < 0.4]
>>> after = [detector.learn_one(hit) for hit in random.random(3000) < 0.1]
>>> any(before), any(after)
(False, True)
>>> signal = next(found for found in after if found)
>>> signal.hit_rate_before > signal.hit_rate_after
True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from river.drift import ADWIN

# ADWIN's confidence: smaller is fewer false alarms and slower detection (river's default).
DEFAULT_DELTA = 0.002


@dataclass(frozen=True, slots=True)
class DriftSignal:
    """A detected fall of the hit rate: ADWIN's window mean before the cut and after it (the
    first cut comes early and may keep part of the old regime, so the fall it shows is a
    lower bound)."""

    detected_at: float
    observations: int
    hit_rate_before: float
    hit_rate_after: float

    def describe(self) -> str:
        """One line for the training run's record and the control message."""
        return (
            f"ADWIN: the prequential hit rate fell from {self.hit_rate_before:.3f} to "
            f"{self.hit_rate_after:.3f} (after {self.observations} events)"
        )


class HitRateDriftDetector:
    """``learn_one(hit)`` per event; returns a DriftSignal when the hit rate fell, at most
    once per ``min_interval_seconds``."""

    def __init__(
        self,
        delta: float = DEFAULT_DELTA,
        min_interval_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if min_interval_seconds < 0:
            raise ValueError(
                f"min_interval_seconds must not be negative, got {min_interval_seconds}"
            )
        self._adwin = ADWIN(delta=delta)
        self._min_interval_seconds = min_interval_seconds
        self._clock = clock
        self._observations = 0
        self._last_signal_at: float | None = None

    @property
    def hit_rate(self) -> float:
        """The mean of ADWIN's current window: the recent hit rate."""
        return float(self._adwin.estimation)

    @property
    def observations(self) -> int:
        return self._observations

    def learn_one(self, hit: bool) -> DriftSignal | None:
        self._observations += 1
        before = self.hit_rate
        self._adwin.update(1.0 if hit else 0.0)
        if not self._adwin.drift_detected:
            return None
        after = self.hit_rate
        if after >= before:
            return None
        now = self._clock()
        if (
            self._last_signal_at is not None
            and now - self._last_signal_at < self._min_interval_seconds
        ):
            return None
        self._last_signal_at = now
        return DriftSignal(now, self._observations, before, after)
