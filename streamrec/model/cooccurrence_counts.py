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

from collections.abc import Collection

from streamrec.model.item_neighbours import CooccurrenceIncrements
from streamrec.model.rising_scores import RisingScores


class CooccurrenceCounts:
    """Every item's co-occurrence counts and popularity."""

    def __init__(self) -> None:
        # Each item's counts with the other items, the best kept in order (counts only grow).
        self._rows: dict[str, RisingScores] = {}
        self._popularity: dict[str, float] = {}

    def add(self, increments: CooccurrenceIncrements) -> None:
        for item_id, other, count in increments.rows():
            if item_id == other:
                self._popularity[item_id] = self._popularity.get(item_id, 0.0) + count
                continue
            row = self._rows.get(item_id)
            if row is None:
                row = self._rows[item_id] = RisingScores()
            row.set(other, row.get(other, 0.0) + count)

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
