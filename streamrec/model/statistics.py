"""Cluster statistics in memory (numpy): A_cj, C_cj, the weighted sum and M_c.

Built in one pass from many users (offline evaluation, a trainer's rebuild), or kept up to date
by applying the additive deltas of ``streamrec.model.contributions`` one event at a time; both
give the same numbers. The streaming pipeline keeps the same statistics in the database.

>>> from streamrec.state import ClusterItemDelta, ClusterMassDelta
>>> statistics = ClusterStatistics(clusters=2)
>>> statistics.apply([ClusterItemDelta(1, "a", 0.5, 0.5, 0.5)], [ClusterMassDelta(1, 0.5)])
>>> statistics.item_ids, statistics.liked[1].tolist(), statistics.mass.tolist()
(['a'], [0.5], [0.0, 0.5])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse

from streamrec.model.decay import ForwardDecay, decay_factors
from streamrec.state import ClusterItemDelta, ClusterMassDelta


class ClusterStatistics:
    """Dense (clusters x items) arrays; items get a column when first seen."""

    def __init__(
        self, clusters: int, item_ids: Sequence[str] = (), decay: ForwardDecay | None = None
    ) -> None:
        self.clusters = clusters
        self.decay = decay
        self.item_ids: list[str] = []
        self.item_index: dict[str, int] = {}
        # Columns are allocated ahead (doubling), so adding items one by one stays cheap.
        self._liked = np.zeros((clusters, 0), dtype=np.float64)
        self._rated = np.zeros((clusters, 0), dtype=np.float64)
        self._weighted = np.zeros((clusters, 0), dtype=np.float64)
        self.mass = np.zeros(clusters, dtype=np.float64)
        self.columns_of(item_ids)

    @property
    def liked(self) -> np.ndarray:
        return self._liked[:, : len(self.item_ids)]

    @property
    def rated(self) -> np.ndarray:
        return self._rated[:, : len(self.item_ids)]

    @property
    def weighted(self) -> np.ndarray:
        return self._weighted[:, : len(self.item_ids)]

    def columns_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """The column of each item, adding columns for items not seen before."""
        columns = []
        for item_id in item_ids:
            column = self.item_index.get(item_id)
            if column is None:
                column = len(self.item_ids)
                self.item_index[item_id] = column
                self.item_ids.append(item_id)
            columns.append(column)
        self._grow(len(self.item_ids))
        return np.asarray(columns, dtype=np.int64)

    def _grow(self, items: int) -> None:
        capacity = self._liked.shape[1]
        if items <= capacity:
            return
        extra = np.zeros((self.clusters, max(items, 2 * capacity) - capacity), dtype=np.float64)
        self._liked = np.hstack([self._liked, extra])
        self._rated = np.hstack([self._rated, extra])
        self._weighted = np.hstack([self._weighted, extra])

    def apply(
        self, item_deltas: Iterable[ClusterItemDelta], mass_deltas: Iterable[ClusterMassDelta]
    ) -> None:
        item_deltas = list(item_deltas)
        if item_deltas:
            columns = self.columns_of(delta.item_id for delta in item_deltas)
            rows = np.array([delta.cluster for delta in item_deltas], dtype=np.int64)
            np.add.at(self._liked, (rows, columns), [delta.liked_mass for delta in item_deltas])
            np.add.at(self._rated, (rows, columns), [delta.rated_mass for delta in item_deltas])
            np.add.at(
                self._weighted, (rows, columns), [delta.weighted_sum for delta in item_deltas]
            )
        for delta in mass_deltas:
            self.mass[delta.cluster] += delta.mass

    def add_users(
        self,
        memberships: np.ndarray,
        user_rows: np.ndarray,
        item_ids: Sequence[str],
        item_columns: np.ndarray,
        weights: np.ndarray,
        timestamps: np.ndarray | None = None,
    ) -> None:
        """Add many users at once. ``memberships`` (users x K) is already cut to each user's
        top M (zeros elsewhere); interaction r is user ``user_rows[r]``'s weight on item
        ``item_ids[item_columns[r]]`` at ``timestamps[r]`` (only read with decay)."""
        users = memberships.shape[0]
        columns = self.columns_of(item_ids)[item_columns]
        weights = np.asarray(weights, dtype=np.float64)
        if timestamps is None:
            timestamps = np.zeros(len(weights), dtype=np.float64)
        scale = decay_factors(self.decay, timestamps)
        shape = (users, len(self.item_ids))
        membership_matrix = sparse.csr_matrix(np.asarray(memberships, dtype=np.float64))

        def accumulate(values: np.ndarray) -> np.ndarray:
            matrix = sparse.csr_matrix((values * scale, (user_rows, columns)), shape=shape)
            return np.asarray((membership_matrix.T @ matrix).todense())

        self.liked[:] += accumulate(np.maximum(weights, 0.0))
        self.rated[:] += accumulate((weights != 0).astype(np.float64))
        self.weighted[:] += accumulate(weights)
        # A user's mass counts at the time of their latest event.
        last_event = np.full(users, -np.inf)
        np.maximum.at(last_event, user_rows, timestamps)
        last_event[~np.isfinite(last_event)] = 0.0 if self.decay is None else self.decay.landmark
        self.mass += (np.asarray(memberships) * decay_factors(self.decay, last_event)[:, None]).sum(
            0
        )

    def read(
        self, now: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(A, C, weighted sum, M) as of ``now``: with decay, divided by g(now)."""
        if self.decay is None or now is None:
            return self.liked, self.rated, self.weighted, self.mass
        scale = 1.0 / float(self.decay.factor(now))
        return self.liked * scale, self.rated * scale, self.weighted * scale, self.mass * scale
