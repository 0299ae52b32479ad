"""Users' interaction sets S_u in compressed rows, built from an InteractionTable.

A later event on the same (user, item) replaces the earlier weight, so only the latest row of
each pair is kept. User u's interactions are rows offsets[u]:offsets[u + 1].

>>> from streamrec.model.interaction_table import InteractionTable
>>> table = InteractionTable.from_rows([("u1", "a", 1.0, 0.0, None), ("u2", "a", 0.5, 1.0, None),
...                                     ("u1", "a", -1.0, 2.0, None)])
>>> sets = InteractionSets.from_table(table)
>>> sets.offsets.tolist(), sets.items.tolist(), sets.weights.tolist()
([0, 1, 2], [0, 0], [-1.0, 0.5])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamrec.model.interaction_table import InteractionTable


@dataclass(frozen=True)
class InteractionSets:
    offsets: np.ndarray  # int64, len(user_vocabulary) + 1
    items: np.ndarray  # int64 index into item_vocabulary
    weights: np.ndarray  # float32
    timestamps: np.ndarray  # float64
    user_vocabulary: list[str]
    item_vocabulary: list[str]

    @classmethod
    def from_table(cls, table: InteractionTable) -> InteractionSets:
        users = table.users.astype(np.int64)
        items = table.items.astype(np.int64)
        # Rows are in time order: the last occurrence of a (user, item) pair is its latest.
        pair = users * max(len(table.item_vocabulary), 1) + items
        reversed_unique = np.unique(pair[::-1], return_index=True)[1]
        latest = np.sort(len(pair) - 1 - reversed_unique)
        order = latest[np.argsort(users[latest], kind="stable")]
        counts = np.bincount(users[order], minlength=len(table.user_vocabulary))
        offsets = np.zeros(len(table.user_vocabulary) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(
            offsets=offsets,
            items=items[order],
            weights=table.weights[order].astype(np.float32),
            timestamps=table.timestamps[order].astype(np.float64),
            user_vocabulary=table.user_vocabulary,
            item_vocabulary=table.item_vocabulary,
        )

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def rows_of(self, user: int) -> slice:
        return slice(int(self.offsets[user]), int(self.offsets[user + 1]))

    def user_of_row(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.user_vocabulary)), self.sizes)
