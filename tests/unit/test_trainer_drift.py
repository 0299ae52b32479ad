"""The drift detector on synthetic hit streams: a fall of the hit rate is signalled soon after
it happens and never before; a steady or rising rate is not; signals are rate-limited."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.drift import DriftSignal, HitRateDriftDetector

STEADY_EVENTS = 4_000
# A detection more than this many events after the change would be too late to be useful.
MAXIMUM_DELAY = 1_000


def hit_stream(rates: list[float], events_per_rate: int, seed: int) -> list[bool]:
    random = np.random.default_rng(seed)
    return [bool(hit) for rate in rates for hit in random.random(events_per_rate) < rate]


def signal_positions(detector: HitRateDriftDetector, hits: list[bool]) -> list[int]:
    return [position for position, hit in enumerate(hits) if detector.learn_one(hit)]


@pytest.mark.parametrize("seed", range(5))
def test_a_fall_of_the_hit_rate_is_signalled_after_the_change_and_only_then(seed: int) -> None:
    hits = hit_stream([0.35, 0.1], STEADY_EVENTS, seed)

    positions = signal_positions(HitRateDriftDetector(clock=lambda: 0.0), hits)

    assert positions, "no drift signalled"
    assert STEADY_EVENTS <= positions[0] < STEADY_EVENTS + MAXIMUM_DELAY


@pytest.mark.parametrize("rates", [[0.3, 0.3], [0.1, 0.4]], ids=["steady", "rising"])
def test_a_steady_or_rising_hit_rate_is_no_signal(rates: list[float]) -> None:
    hits = hit_stream(rates, STEADY_EVENTS, seed=11)

    assert signal_positions(HitRateDriftDetector(clock=lambda: 0.0), hits) == []


def test_signals_are_rate_limited_and_describe_the_fall() -> None:
    now = [0.0]
    detector = HitRateDriftDetector(min_interval_seconds=60.0, clock=lambda: now[0])

    def signals_during(rates: list[float], seed: int) -> list[DriftSignal]:
        hits = hit_stream(rates, STEADY_EVENTS, seed)
        return [signal for hit in hits if (signal := detector.learn_one(hit))]

    first = signals_during([0.5, 0.2], seed=3)
    now[0] = 30.0
    too_soon = signals_during([0.05], seed=4)
    now[0] = 100.0
    after_the_interval = signals_during([0.5, 0.1], seed=5)

    # ADWIN may cut its window several times during one fall: one signal goes out.
    assert len(first) == 1 and too_soon == [] and len(after_the_interval) == 1
    signal = first[0]
    assert signal.hit_rate_after < signal.hit_rate_before
    assert signal.describe().startswith(
        f"ADWIN: the prequential hit rate fell from {signal.hit_rate_before:.3f} to "
    )
    assert after_the_interval[0].detected_at == 100.0
    assert detector.observations == 5 * STEADY_EVENTS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delta": 0.0}, "delta must be in"),
        ({"min_interval_seconds": -1.0}, "must not be negative"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(
    options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        HitRateDriftDetector(**options)
