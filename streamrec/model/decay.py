"""Forward time decay: a cluster's taste can drift while every update stays additive.

A contribution made at time t is stored scaled by g(t) = exp(rate * (t - landmark)), with
rate = ln 2 / half-life. Reading the statistics at time ``now`` divides by g(now), which gives
each contribution its weight exp(-rate * (now - t)) without ever rewriting old values
(Cormode et al., "Forward Decay", ICDE 2009). The landmark is fixed per set of statistics;
each model version takes the latest event time of its training data as its landmark
(``Architecture.statistics_time_landmark``), so every retrain moves it. g would overflow
about 1000 half-lives away from the landmark: exponents are clipped there, so a version
served that long keeps working, its newest events no longer told apart.

>>> decay = ForwardDecay(half_life_seconds=10.0, landmark=0.0)
>>> round(float(decay.factor(20.0) / decay.factor(30.0)), 6)
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# e^700 is near float64's largest value (about e^709.8): about 1000 half-lives.
MAX_EXPONENT = 700.0


@dataclass(frozen=True)
class ForwardDecay:
    half_life_seconds: float
    landmark: float

    @classmethod
    def from_days(cls, half_life_days: float | None, landmark: float) -> ForwardDecay | None:
        if half_life_days is None:
            return None
        return cls(half_life_days * 86_400.0, landmark)

    @property
    def rate(self) -> float:
        return math.log(2.0) / self.half_life_seconds

    def factor(self, timestamps: float | np.ndarray) -> np.ndarray:
        exponents = self.rate * (np.asarray(timestamps, dtype=np.float64) - self.landmark)
        return np.exp(np.clip(exponents, -MAX_EXPONENT, MAX_EXPONENT))


def decay_factors(decay: ForwardDecay | None, timestamps: np.ndarray) -> np.ndarray:
    """g(t) for each timestamp; all ones without decay."""
    if decay is None:
        return np.ones(len(timestamps), dtype=np.float64)
    return decay.factor(timestamps)
