"""Item-neighbour baselines for the prequential evaluation, learning one event at a time.

- ``ItemCooccurrence``: the incremental co-occurrence model of the evaluation plan. Each item
  new to a user adds one co-occurrence count with each of the user's previous ``recent``
  items (20), both ways; a user's candidates are scored from their last ``recent`` items,
  the counts summed and divided by sqrt(the candidate's popularity), seen items excluded.
- ``RefittedEASE``: EASE (``streamrec.evaluation.baselines.ease_weights``) fitted on every
  event learned so far, first when it is first asked, then again once ``refit_every``
  more events were learned; between fits it scores users' current histories with the last
  weights (items first seen after the fit cannot be scored until the next one).

Both implement ``streamrec.evaluation.streaming_baselines.StreamingRecommender``. A user they
cannot score (no history, or none of it known) gets the most popular unseen items, as
streamrec serves a user without a profile its global list; a list shorter than asked is
filled the same way.

>>> cooccurrence = ItemCooccurrence()
>>> for user, item in [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c"), ("u3", "c")]:
...     cooccurrence.learn(user, item, 1.0)
>>> cooccurrence.recommend("u4", 2, seen=set())  # nothing known: the popular items
['a', 'c']
>>> cooccurrence.recommend("u3", 2, seen={"c"})  # c was seen with a
['a', 'b']
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy import sparse

from streamrec.evaluation.baselines import ease_weights

DEFAULT_RECENT_ITEMS = 20
DEFAULT_EASE_REGULARIZATION = 300.0


class ItemColumns:
    """Item ids numbered in the order they are first seen, with an interaction count each.

    >>> columns = ItemColumns()
    >>> [columns.count(item) for item in ["a", "b", "a"]]
    [0, 1, 0]
    >>> columns.popular(3, exclude={"b"})
    ['a']
    """

    def __init__(self) -> None:
        self.item_ids: list[str] = []
        self.columns: dict[str, int] = {}
        self._counts = np.zeros(1024, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def counts(self) -> np.ndarray:
        """Interactions per column so far."""
        return self._counts[: len(self.item_ids)]

    def column(self, item_id: str) -> int:
        """The item's column, numbering it if it is new."""
        column = self.columns.get(item_id)
        if column is None:
            column = self.columns[item_id] = len(self.item_ids)
            self.item_ids.append(item_id)
            if column == self._counts.size:
                self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
        return column

    def count(self, item_id: str) -> int:
        """Count one interaction with the item; its column."""
        column = self.column(item_id)
        self._counts[column] += 1.0
        return column

    def popular(self, count: int, exclude: set[str]) -> list[str]:
        """The ``count`` most interacted-with items not in ``exclude`` (ties: first seen)."""
        scores = self.counts.copy()
        scores[self.known(exclude)] = -np.inf
        return [self.item_ids[column] for column in top_columns(scores, count)]

    def known(self, item_ids: set[str]) -> list[int]:
        return [self.columns[item_id] for item_id in item_ids if item_id in self.columns]


def top_columns(scores: np.ndarray, count: int) -> list[int]:
    """The columns of the ``count`` largest finite scores, largest first, ties by column.

    >>> top_columns(np.array([1.0, 3.0, -np.inf, 3.0]), 5)
    [1, 3, 0]
    """
    wanted = min(count, scores.size)
    if wanted <= 0:
        return []
    best = np.argpartition(-scores, wanted - 1)[:wanted]
    ranked = best[np.lexsort((best, -scores[best]))]
    return [int(column) for column in ranked if np.isfinite(scores[column])]


def filled(chosen: list[str], count: int, columns: ItemColumns, seen: set[str]) -> list[str]:
    """``chosen`` followed by the most popular items that are neither seen nor chosen, up to
    ``count`` in all."""
    if len(chosen) >= count:
        return chosen[:count]
    return chosen + columns.popular(count - len(chosen), seen | set(chosen))


class _Neighbours:
    """One item's co-occurrence counts: columns and counts in growing arrays."""

    __slots__ = ("counts", "neighbours", "positions", "size")

    def __init__(self) -> None:
        self.positions: dict[int, int] = {}
        self.neighbours = np.zeros(16, dtype=np.int64)
        self.counts = np.zeros(16, dtype=np.float64)
        self.size = 0

    def add(self, column: int) -> None:
        position = self.positions.get(column)
        if position is None:
            position = self.positions[column] = self.size
            self.size += 1
            if position == self.neighbours.size:
                self.neighbours = np.concatenate([self.neighbours, np.zeros_like(self.neighbours)])
                self.counts = np.concatenate([self.counts, np.zeros_like(self.counts)])
            self.neighbours[position] = column
        self.counts[position] += 1.0


class ItemCooccurrence:
    """Incremental item co-occurrence over each user's last ``recent`` items (module text)."""

    def __init__(self, recent: int = DEFAULT_RECENT_ITEMS) -> None:
        if recent < 1:
            raise ValueError(f"recent must be at least 1, got {recent}")
        self.name = "co-occurrence"
        self.recent = recent
        self._columns = ItemColumns()
        self._neighbours: list[_Neighbours] = []
        self._recent_columns: dict[str, deque[int]] = {}
        self._user_items: dict[str, set[int]] = {}

    def recommend(self, user_id: str, count: int, seen: set[str]) -> list[str]:
        recent = self._recent_columns.get(user_id)
        if not recent:
            return self._columns.popular(count, seen)
        scores = np.zeros(len(self._columns), dtype=np.float64)
        for column in recent:
            neighbours = self._neighbours[column]
            # A row holds each neighbour once, so a fancy-indexed add adds every count.
            scores[neighbours.neighbours[: neighbours.size]] += neighbours.counts[: neighbours.size]
        scores /= np.sqrt(np.maximum(self._columns.counts, 1.0))
        scores[scores <= 0.0] = -np.inf
        scores[self._columns.known(seen)] = -np.inf
        chosen = [self._columns.item_ids[column] for column in top_columns(scores, count)]
        return filled(chosen, count, self._columns, seen)

    def learn(self, user_id: str, item_id: str, weight: float) -> None:
        column = self._columns.count(item_id)
        if column == len(self._neighbours):
            self._neighbours.append(_Neighbours())
        items = self._user_items.setdefault(user_id, set())
        if column in items:
            return  # not new to the user: no new co-occurrence
        items.add(column)
        recent = self._recent_columns.setdefault(user_id, deque(maxlen=self.recent))
        for earlier in recent:
            self._neighbours[column].add(earlier)
            self._neighbours[earlier].add(column)
        recent.append(column)


class RefittedEASE:
    """EASE fitted on all events so far, again every ``refit_every`` events (module text).

    >>> ease = RefittedEASE(refit_every=100, regularization=1.0)
    >>> for user, item in [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a")]:
    ...     ease.learn(user, item, 1.0)
    >>> ease.recommend("u3", 1, seen={"a"}), ease.fits
    (['b'], 1)
    """

    def __init__(
        self, refit_every: int, regularization: float = DEFAULT_EASE_REGULARIZATION
    ) -> None:
        if refit_every < 1:
            raise ValueError(f"refit_every must be at least 1, got {refit_every}")
        self.name = f"EASE, refit every {refit_every:,} events"
        self.refit_every = refit_every
        self.regularization = regularization
        self.fits = 0
        self._columns = ItemColumns()
        self._user_rows: dict[str, int] = {}
        self._user_items: list[set[int]] = []
        self._learned_since_fit = 0
        # The weights' columns are the items known at the last fit, in ItemColumns' order.
        self._weights = np.zeros((0, 0), dtype=np.float32)
        # history @ weights per user, kept up to date between fits.
        self._user_scores: dict[str, np.ndarray] = {}

    @property
    def items_scored(self) -> int:
        """How many items the last fit can recommend (the others only fill a list)."""
        return int(self._weights.shape[0])

    def recommend(self, user_id: str, count: int, seen: set[str]) -> list[str]:
        if self._learned_since_fit >= self.refit_every or (
            self.fits == 0 and self._learned_since_fit
        ):
            self._fit()
        scores = self._scores(user_id)
        if scores is None:
            return self._columns.popular(count, seen)
        scores = scores.copy()
        scores[[column for column in self._columns.known(seen) if column < scores.size]] = -np.inf
        chosen = [self._columns.item_ids[column] for column in top_columns(scores, count)]
        return filled(chosen, count, self._columns, seen)

    def learn(self, user_id: str, item_id: str, weight: float) -> None:
        column = self._columns.count(item_id)
        row = self._user_rows.get(user_id)
        if row is None:
            row = self._user_rows[user_id] = len(self._user_items)
            self._user_items.append(set())
        self._learned_since_fit += 1
        if column in self._user_items[row]:
            return
        self._user_items[row].add(column)
        scores = self._user_scores.get(user_id)
        if scores is not None and column < self._weights.shape[0]:
            scores += self._weights[column]

    def _fit(self) -> None:
        rows = [row for row, items in enumerate(self._user_items) for _ in items]
        columns = [column for items in self._user_items for column in items]
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)),
            shape=(len(self._user_items), len(self._columns)),
        )
        self._weights = ease_weights(matrix, self.regularization)
        self._user_scores.clear()
        self._learned_since_fit = 0
        self.fits += 1

    def _scores(self, user_id: str) -> np.ndarray | None:
        """The user's history @ weights; None when no item of theirs is known to the fit."""
        scores = self._user_scores.get(user_id)
        if scores is not None:
            return scores
        row = self._user_rows.get(user_id)
        known = sorted(
            column
            for column in (self._user_items[row] if row is not None else ())
            if column < self._weights.shape[0]
        )
        if not known:
            return None
        scores = self._weights[known].sum(axis=0, dtype=np.float32)
        self._user_scores[user_id] = scores
        return scores


__all__ = [
    "ItemColumns",
    "ItemCooccurrence",
    "RefittedEASE",
    "filled",
    "top_columns",
]
