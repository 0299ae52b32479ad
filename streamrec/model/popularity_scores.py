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

from streamrec.model.decayed_popularity import PopularityIncrements, log2_sum
from streamrec.model.rising_scores import RisingScores


class PopularityScores:
    """Every item's log2 decayed popularity, the best ones in order."""

    __slots__ = ("_scores",)

    def __init__(self) -> None:
        self._scores = RisingScores()

    def add(self, increments: PopularityIncrements) -> None:
        for item_id, log_score in increments.rows():
            before = self._scores.get(item_id)
            self._scores.set(item_id, log_score if before is None else log2_sum(before, log_score))

    def most_popular(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` items of largest score, largest first, ties by item id."""
        return self._scores.largest(count)

    def scores(self) -> dict[str, float]:
        """Every item's log2 score."""
        return self._scores.as_dict()


__all__ = ["PopularityScores"]
