"""Item co-occurrence counts in memory, for ``InMemoryStreamState``.

Each item keeps its k most co-occurring items in order as counts are added, so a read
sorts nothing (an in-process stream asks after every event). The answers are
the database's: the k largest counts, ties by item id, the item itself left out; its own
count (the pair (item, item)) is its popularity.

>>> from streamrec.model.item_neighbours import CooccurrenceIncrements
>>> counts = CooccurrenceCounts()
>>> counts.add(CooccurrenceIncrements(["a", "a", "a", "a"], ["a", "b", "c", "d"],
...                                   [3.0, 1.0, 2.0, 1.0]))
>>> counts.neighbours(["a", "x"], 2), counts.popularity(["a", "b"])
({'a': [('c', 2.0), ('b', 1.0)]}, {'a': 3.0})
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection

from streamrec.model.item_neighbours import CooccurrenceIncrements


class CooccurrenceCounts:
    """Every item's co-occurrence counts and popularity."""

    def __init__(self) -> None:
        self._rows: dict[str, _CountRow] = {}
        self._popularity: dict[str, float] = {}

    def add(self, increments: CooccurrenceIncrements) -> None:
        for item_id, other, count in increments.rows():
            if item_id == other:
                self._popularity[item_id] = self._popularity.get(item_id, 0.0) + count
                continue
            row = self._rows.get(item_id)
            if row is None:
                row = self._rows[item_id] = _CountRow()
            row.add(other, count)

    def neighbours(
        self, item_ids: Collection[str], count: int
    ) -> dict[str, list[tuple[str, float]]]:
        """Each item's ``count`` most co-occurring other items (items without any absent)."""
        return {
            item_id: self._rows[item_id].largest(count)
            for item_id in item_ids
            if item_id in self._rows
        }

    def popularity(self, item_ids: Collection[str]) -> dict[str, float]:
        """How many users have each item (items nobody has are absent)."""
        return {
            item_id: self._popularity[item_id]
            for item_id in item_ids
            if item_id in self._popularity
        }


class _CountRow:
    """One item's counts with the other items, and its best ones kept in order.

    Counts only grow, so the best ``size`` pairs by (count descending, item id) are kept
    exactly as counts are added: a pair outside them can only enter by growing itself,
    past the last of them. A read then copies at most k pairs instead of sorting the row
    (a popular item co-occurs with thousands, mostly tied at a count of one or two).

    >>> row = _CountRow()
    >>> for item_id in ["b", "c", "a", "c", "d", "d"]:
    ...     row.add(item_id, 1.0)
    >>> row.largest(2), row.largest(3)
    ([('c', 2.0), ('d', 2.0)], [('c', 2.0), ('d', 2.0), ('a', 1.0)])
    >>> row.add("a", 5.0); row.largest(2)
    [('a', 6.0), ('c', 2.0)]
    """

    __slots__ = ("_best", "_best_ids", "_counts", "_size")

    def __init__(self) -> None:
        self._counts: dict[str, float] = {}
        # (-count, item id) of the best pairs, in order; None until first read.
        self._best: list[tuple[float, str]] | None = None
        self._best_ids: set[str] = set()
        self._size = 0

    def add(self, item_id: str, count: float) -> None:
        before = self._counts.get(item_id, 0.0)
        after = self._counts[item_id] = before + count
        best = self._best
        if best is None:
            return
        if count < 0.0:
            self._best = None  # a count that shrinks: sorted again at the next read
            return
        key = (-after, item_id)
        if item_id in self._best_ids:
            del best[bisect_left(best, (-before, item_id))]
            insort(best, key)
        elif len(best) < self._size:
            # Fewer pairs than the size: every pair is among the best.
            insort(best, key)
            self._best_ids.add(item_id)
        elif key < best[-1]:
            self._best_ids.discard(best.pop()[1])
            insort(best, key)
            self._best_ids.add(item_id)

    def largest(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` largest counts, largest first, ties by item id."""
        if count <= 0:
            return []
        if self._best is None or count > self._size:
            ordered = sorted((-value, item_id) for item_id, value in self._counts.items())
            self._size = count
            self._best = ordered[:count]
            self._best_ids = {item_id for _, item_id in self._best}
        return [(item_id, -negative) for negative, item_id in self._best[:count]]
