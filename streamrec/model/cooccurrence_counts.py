"""Item co-occurrence counts in memory, for ``InMemoryStreamState``.

Each item keeps its counts in a growing array, so its k most co-occurring items are found
without sorting them all (an in-process stream asks after every event). The answers are
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

import numpy as np

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
    """One item's counts with the other items, in a growing array."""

    __slots__ = ("_columns", "_item_ids", "_values")

    def __init__(self) -> None:
        self._columns: dict[str, int] = {}
        self._item_ids: list[str] = []
        self._values = np.zeros(16, dtype=np.float64)

    def add(self, item_id: str, count: float) -> None:
        column = self._columns.get(item_id)
        if column is None:
            column = self._columns[item_id] = len(self._item_ids)
            self._item_ids.append(item_id)
            if column == self._values.size:
                self._values = np.concatenate([self._values, np.zeros_like(self._values)])
        self._values[column] += count

    def largest(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` largest counts, largest first, ties by item id."""
        size = len(self._item_ids)
        if count <= 0 or size == 0:
            return []
        values = self._values[:size]
        if size > count:
            threshold = np.partition(values, size - count)[size - count]
            above = np.flatnonzero(values > threshold).tolist()
            # Ties at the boundary: only the smallest ids among them are kept, as the
            # database's order (count descending, then item id) keeps them.
            tied = sorted(self._item_ids[column] for column in np.flatnonzero(values == threshold))
            chosen = [(self._item_ids[column], float(values[column])) for column in above]
            chosen += [(item_id, float(threshold)) for item_id in tied[: count - len(above)]]
        else:
            chosen = [
                (item_id, float(value))
                for item_id, value in zip(self._item_ids, values.tolist(), strict=True)
            ]
        chosen.sort(key=lambda pair: (-pair[1], pair[0]))
        return chosen
