"""Full-catalogue scoring: every item's retrieval score for a user, exact, no shortlists.

The cluster vote ranks only the union of the user's top-M clusters' shortlists (at most
M * L candidates). This path ranks the whole catalogue by the retrieval score the vote's
re-ranking uses, (P z_u) . t_j: one (users x d) by (d x items) product, the user's own items
removed, the top ``count`` kept. It costs O(items * d) per user instead of O(M * L * d), and
finds items no cluster shortlists. ``docs/model.md`` ("Candidate recall") measures both.

>>> targets = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
>>> catalogue = CatalogueTargets(["a", "b", "c"], targets)
>>> queries = np.array([[1.0, 0.2], [0.0, 1.0]], dtype=np.float32)
>>> columns, scores = top_by_retrieval(queries, catalogue.targets, [[0], []], count=2)
>>> columns.tolist(), scores.round(2).tolist()
([[2, 1], [1, 2]], [[0.84, 0.2], [1.0, 0.7]])
>>> [[item.item_id for item in items] for items in catalogue.recommend(queries, [{"a"}, set()], 1)]
[['c'], ['b']]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from streamrec.events import RecommendedItem
from streamrec.model.shortlists import NO_ITEM

# Users scored per matrix product: bounds the (users x items) score matrix.
USERS_PER_BLOCK = 256


def top_by_retrieval(
    queries: np.ndarray,
    targets: np.ndarray,
    exclude: Sequence[Collection[int]],
    count: int,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the ``count`` catalogue columns with the largest query . target,
    best first (ties to the smaller column), without the columns in its ``exclude``. Returns
    (columns, scores), each (users x count); NO_ITEM and 0 where fewer items are left."""
    users = queries.shape[0]
    if len(exclude) != users:
        raise ValueError(f"{users} queries but {len(exclude)} collections of excluded items")
    taken = max(0, min(count, targets.shape[0]))
    columns = np.full((users, max(count, 0)), NO_ITEM, dtype=np.int64)
    scores = np.zeros((users, max(count, 0)), dtype=np.float64)
    if taken == 0 or users == 0:
        return columns, scores
    targets_transposed = np.ascontiguousarray(targets.T, dtype=np.float32)
    for start in range(0, users, USERS_PER_BLOCK):
        stop = min(users, start + USERS_PER_BLOCK)
        block = np.asarray(queries[start:stop], dtype=np.float32) @ targets_transposed
        for row, excluded in enumerate(exclude[start:stop]):
            if excluded:
                block[row, np.fromiter(excluded, dtype=np.int64)] = -np.inf
        top = np.argpartition(-block, taken - 1, axis=1)[:, :taken]
        values = np.take_along_axis(block, top, axis=1)
        # Sorted by score, then by column, so that equal scores rank alike everywhere.
        order = np.lexsort((top, -values), axis=1)
        top, values = np.take_along_axis(top, order, 1), np.take_along_axis(values, order, 1)
        finite = np.isfinite(values)
        columns[start:stop, :taken] = np.where(finite, top, NO_ITEM)
        scores[start:stop, :taken] = np.where(finite, values, 0.0)
    return columns, scores


@dataclass(frozen=True)
class CatalogueTargets:
    """The catalogue's item ids and their targets t_j (items x d), row i for item_ids[i]."""

    item_ids: Sequence[str]
    targets: np.ndarray
    column_of: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.item_ids) != self.targets.shape[0]:
            raise ValueError(f"{len(self.item_ids)} items but {self.targets.shape[0]} targets")
        columns = {item_id: column for column, item_id in enumerate(self.item_ids)}
        object.__setattr__(self, "column_of", columns)

    def recommend(
        self, queries: np.ndarray, seen: Sequence[Collection[str]], count: int
    ) -> list[list[RecommendedItem]]:
        """Each query's top ``count`` catalogue items by retrieval score, without its seen
        items (an item outside the catalogue is never recommended anyway)."""
        exclude = [
            [self.column_of[item_id] for item_id in items if item_id in self.column_of]
            for items in seen
        ]
        columns, scores = top_by_retrieval(queries, self.targets, exclude, count)
        return [
            [
                RecommendedItem(self.item_ids[column], score)
                for column, score in zip(row_columns, row_scores, strict=True)
                if column != NO_ITEM
            ]
            for row_columns, row_scores in zip(columns.tolist(), scores.tolist(), strict=True)
        ]
