"""Decayed item popularity in memory, for ``InMemoryStreamState``.

Each item's log2 score (``model.decayed_popularity``) in a dictionary, and the best items
kept in order as scores are added, so reading the top N sorts nothing (an in-process
stream asks after every event). Scores only rise (a log-sum-exp with any value is larger),
so an item outside the best can only enter by rising past the last of them. The answers
are the database's: the largest scores first, ties by item id.

>>> from streamrec.model.decayed_popularity import PopularityIncrements
>>> scores = PopularityScores()
>>> scores.add(PopularityIncrements(["a", "b", "c"], [1.0, 3.0, 1.0]))
>>> scores.most_popular(2)
[('b', 3.0), ('a', 1.0)]
>>> scores.add(PopularityIncrements(["c"], [1.0])); scores.most_popular(2)
[('b', 3.0), ('c', 2.0)]
"""

from __future__ import annotations

from bisect import bisect_left, insort

from streamrec.model.decayed_popularity import PopularityIncrements, log2_sum


class PopularityScores:
    """Every item's log2 decayed popularity, the best ones in order."""

    __slots__ = ("_best", "_best_ids", "_scores", "_size")

    def __init__(self) -> None:
        self._scores: dict[str, float] = {}
        # (-score, item id) of the best items, in order; None until first read.
        self._best: list[tuple[float, str]] | None = None
        self._best_ids: set[str] = set()
        self._size = 0

    def add(self, increments: PopularityIncrements) -> None:
        for item_id, log_score in increments.rows():
            before = self._scores.get(item_id)
            after = log_score if before is None else log2_sum(before, log_score)
            self._scores[item_id] = after
            self._keep_best(item_id, before, after)

    def _keep_best(self, item_id: str, before: float | None, after: float) -> None:
        best = self._best
        if best is None:
            return
        key = (-after, item_id)
        if item_id in self._best_ids:
            assert before is not None
            del best[bisect_left(best, (-before, item_id))]
            insort(best, key)
        elif len(best) < self._size:
            # Fewer items than the size: every item is among the best.
            insort(best, key)
            self._best_ids.add(item_id)
        elif key < best[-1]:
            self._best_ids.discard(best.pop()[1])
            insort(best, key)
            self._best_ids.add(item_id)

    def most_popular(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` items of largest score, largest first, ties by item id."""
        if count <= 0:
            return []
        if self._best is None or count > self._size:
            ordered = sorted((-score, item_id) for item_id, score in self._scores.items())
            self._size = count
            self._best = ordered[:count]
            self._best_ids = {item_id for _, item_id in self._best}
        return [(item_id, -negative) for negative, item_id in self._best[:count]]

    def scores(self) -> dict[str, float]:
        """Every item's log2 score."""
        return dict(self._scores)


__all__ = ["PopularityScores"]
