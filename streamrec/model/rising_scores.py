"""Scores that only rise, with the best of them kept in order: a top-k read sorts nothing.

An in-process stream reads the top of its co-occurrence rows and of its item popularity after
every event. Both only grow (a count adds a positive number, a decayed popularity a
log-sum-exp), so the best ``size`` keys by (score descending, key) can be kept exactly as
scores rise: a key outside them can only enter by rising itself, past the last of them. A
read then copies at most k entries instead of sorting thousands (mostly tied at small
values). A score that falls is still allowed: the order is rebuilt at the next read.

>>> scores = RisingScores()
>>> for key in ["b", "c", "a", "c", "d", "d"]:
...     scores.set(key, scores.get(key, 0.0) + 1.0)
>>> scores.largest(2), scores.largest(3)
([('c', 2.0), ('d', 2.0)], [('c', 2.0), ('d', 2.0), ('a', 1.0)])
>>> scores.set("a", 6.0); scores.largest(2)
[('a', 6.0), ('c', 2.0)]
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import overload


class RisingScores:
    """A score per key, the best ``size`` of them kept in order once read."""

    __slots__ = ("_best", "_best_keys", "_scores", "_size")

    def __init__(self) -> None:
        self._scores: dict[str, float] = {}
        # (-score, key) of the best keys, in order; None until the first read.
        self._best: list[tuple[float, str]] | None = None
        self._best_keys: set[str] = set()
        self._size = 0

    @overload
    def get(self, key: str) -> float | None: ...

    @overload
    def get(self, key: str, default: float) -> float: ...

    def get(self, key: str, default: float | None = None) -> float | None:
        return self._scores.get(key, default)

    def set(self, key: str, score: float) -> None:
        before = self._scores.get(key)
        self._scores[key] = score
        best = self._best
        if best is None:
            return
        if before is not None and score < before:
            self._best = None  # a score that falls: sorted again at the next read
            return
        entry = (-score, key)
        if key in self._best_keys:
            assert before is not None
            del best[bisect_left(best, (-before, key))]
            insort(best, entry)
        elif len(best) < self._size:
            # Fewer keys than the size: every key is among the best.
            insort(best, entry)
            self._best_keys.add(key)
        elif entry < best[-1]:
            self._best_keys.discard(best.pop()[1])
            insort(best, entry)
            self._best_keys.add(key)

    def largest(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` largest scores, largest first, ties by key."""
        if count <= 0:
            return []
        if self._best is None or count > self._size:
            ordered = sorted((-score, key) for key, score in self._scores.items())
            self._size = count
            self._best = ordered[:count]
            self._best_keys = {key for _, key in self._best}
        return [(key, -negative) for negative, key in self._best[:count]]

    def as_dict(self) -> dict[str, float]:
        return dict(self._scores)
