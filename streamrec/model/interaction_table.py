"""Columnar interactions: the batch form of a stream, for training and offline evaluation.

Dataset loaders (``streamrec.datasets``) return one, the trainer samples users from one, and
the offline evaluation splits one; it is plain numpy, with no I/O.

>>> table = InteractionTable.from_rows(
...     [("u1", "i1", 1.0, 0.0, 5.0), ("u2", "i1", -0.5, 1.0, None)])
>>> table.user_vocabulary, table.item_vocabulary, len(table)
(['u1', 'u2'], ['i1'], 2)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InteractionTable:
    """Columnar interactions, one row per event, for batch training and offline evaluation.

    users[k] and items[k] index into user_vocabulary and item_vocabulary (the external ids).
    weights are preference weights in [-1, 1]; ratings hold the raw explicit value, or NaN
    for implicit events. Rows are sorted by timestamp (ties keep file order).
    """

    users: np.ndarray  # int32 index into user_vocabulary
    items: np.ndarray  # int32 index into item_vocabulary
    weights: np.ndarray  # float32 in [-1, 1]
    timestamps: np.ndarray  # float64 epoch seconds
    ratings: np.ndarray  # float32, NaN for implicit events
    user_vocabulary: list[str]
    item_vocabulary: list[str]

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[str, str, float, float, float | None]]
    ) -> InteractionTable:
        """Build from (user_id, item_id, weight, timestamp, rating or None) rows."""
        user_index: dict[str, int] = {}
        item_index: dict[str, int] = {}
        users, items, weights, timestamps, ratings = [], [], [], [], []
        for user_id, item_id, weight, timestamp, rating in rows:
            users.append(user_index.setdefault(user_id, len(user_index)))
            items.append(item_index.setdefault(item_id, len(item_index)))
            weights.append(weight)
            timestamps.append(timestamp)
            ratings.append(np.nan if rating is None else rating)
        order = np.argsort(np.asarray(timestamps, dtype=np.float64), kind="stable")
        return cls(
            users=np.asarray(users, dtype=np.int32)[order],
            items=np.asarray(items, dtype=np.int32)[order],
            weights=np.asarray(weights, dtype=np.float32)[order],
            timestamps=np.asarray(timestamps, dtype=np.float64)[order],
            ratings=np.asarray(ratings, dtype=np.float32)[order],
            user_vocabulary=list(user_index),
            item_vocabulary=list(item_index),
        )

    def subset(self, rows: np.ndarray) -> InteractionTable:
        """The rows selected by a boolean mask or index array, vocabularies unchanged."""
        return InteractionTable(
            users=self.users[rows],
            items=self.items[rows],
            weights=self.weights[rows],
            timestamps=self.timestamps[rows],
            ratings=self.ratings[rows],
            user_vocabulary=self.user_vocabulary,
            item_vocabulary=self.item_vocabulary,
        )
