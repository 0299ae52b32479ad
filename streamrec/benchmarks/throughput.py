"""Measuring the pipeline's sustained rate from the outside: the offsets the consumers store
in the database with each batch (the same truth they resume from).

The start (joining the group, loading the model) and the tail (the last, partial batches)
are not the steady state, so the rate is the slope between the moments 10% and 90% of the
backlog were stored.

>>> samples = [(0.0, 0), (1.0, 0), (2.0, 100), (3.0, 500), (4.0, 900), (5.0, 1000)]
>>> sustained_rate(samples, total=1000)
400.0
>>> percentiles([1.0, 2.0, 3.0, 4.0], (50, 100))
{'p50': 2.5, 'p100': 4.0}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import Engine

from streamrec.storage import UnitOfWork

Sample = tuple[float, int]  # (seconds, records stored so far)
SAMPLE_INTERVAL_SECONDS = 0.2


def sustained_rate(
    samples: Sequence[Sample], total: int, low: float = 0.1, high: float = 0.9
) -> float | None:
    """Records per second between the first samples at or above ``low`` and ``high`` of
    ``total``; None when the run never got that far or too fast to tell."""
    start = next(((t, n) for t, n in samples if n >= low * total), None)
    end = next(((t, n) for t, n in samples if n >= high * total), None)
    if start is None or end is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) / (end[0] - start[0])


def percentiles(values: Sequence[float], which: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    if not values:
        return {}
    computed = np.percentile(np.asarray(values, dtype=np.float64), list(which))
    return {f"p{rank}": float(value) for rank, value in zip(which, computed, strict=True)}


def percentiles_by_window(
    values: Sequence[float], windows: int, which: Sequence[int] = (50, 99)
) -> list[dict[str, float]]:
    """``percentiles`` of ``windows`` consecutive, equal parts of ``values`` (in order of
    arrival): whether a tail comes from a few slow moments or from falling behind.

    >>> percentiles_by_window([0.1, 0.1, 0.2, 0.2, 0.9, 1.0], 3, which=(50,))
    [{'p50': 0.1}, {'p50': 0.2}, {'p50': 0.95}]
    """
    parts = np.array_split(np.asarray(values, dtype=np.float64), min(windows, len(values)))
    return [percentiles(part.tolist(), which) for part in parts if len(part)]


def stored_records(engine: Engine, consumer_group: str, topic: str) -> int:
    """Records of ``topic`` the group has applied (the sum of its stored next offsets)."""
    with UnitOfWork(engine) as uow:
        return sum(uow.offsets.get(consumer_group, topic).values())


def watch_stored_offsets(
    engine: Engine,
    consumer_group: str,
    topic: str,
    total: int,
    *,
    timeout_seconds: float,
    check: Callable[[], None] = lambda: None,
    baseline: int = 0,
) -> list[Sample]:
    """Sample how many records past ``baseline`` were stored, until ``total`` or the timeout.
    ``check`` runs at every sample and may raise (e.g. a consumer died)."""
    samples: list[Sample] = []
    started = time.monotonic()
    while True:
        now = time.monotonic() - started
        stored = stored_records(engine, consumer_group, topic) - baseline
        samples.append((now, stored))
        if stored >= total or now > timeout_seconds:
            return samples
        check()
        time.sleep(SAMPLE_INTERVAL_SECONDS)
