"""Each cluster's shortlist: its top-L items by a weight W_cj derived from the statistics.

The weights, for cluster c and item j (statistics as read at one time):

- ``share``: A_cj / M_c, the share of the cluster's mass that liked j;
- ``rated_share``: C_cj / M_c, the share of the cluster that interacted with j at all;
- ``weighted_mean``: the paper's weighted rating, sum p_uc w_uj / C_cj, the membership-weighted
  mean weight of j among the cluster's raters (it ranks an item liked by a single member first);
- ``shrunk_mean``: that mean shrunk towards 0 (the neutral weight) by ``prior_mass`` pseudo-raters:
  sum p_uc w_uj / (C_cj + prior_mass), count-aware.

docs/model.md records which one measured best (the default in ModelSettings).

>>> import numpy as np
>>> liked, rated = np.array([[2.0, 1.0, 0.0]]), np.array([[2.0, 1.0, 3.0]])
>>> weighted, mass = np.array([[2.0, 1.0, -3.0]]), np.array([4.0])
>>> shortlist_weights(liked, rated, weighted, mass, "share").tolist()
[[0.5, 0.25, 0.0]]
>>> shortlist_weights(liked, rated, weighted, mass, "weighted_mean").tolist()
[[1.0, 1.0, -1.0]]
>>> lists = Shortlists.from_weights(shortlist_weights(liked, rated, weighted, mass, "share"),
...                                 rated, ["a", "b", "c"], length=2)
>>> lists.items.tolist(), lists.global_items.tolist()
([[0, 1]], [0, 1])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import numpy as np

from streamrec.model.statistics import ClusterStatistics

ShortlistWeight = Literal["share", "rated_share", "weighted_mean", "shrunk_mean"]
NO_ITEM = -1
DEFAULT_PRIOR_MASS = 5.0


def shortlist_weights(
    liked: np.ndarray,
    rated: np.ndarray,
    weighted: np.ndarray,
    mass: np.ndarray,
    kind: ShortlistWeight,
    prior_mass: float = DEFAULT_PRIOR_MASS,
) -> np.ndarray:
    """W (clusters x items) from the statistics; 0 where a cluster has no mass or raters."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "share":
            weights = liked / mass[:, None]
        elif kind == "rated_share":
            weights = rated / mass[:, None]
        elif kind == "weighted_mean":
            weights = weighted / rated
        elif kind == "shrunk_mean":
            weights = weighted / (rated + prior_mass)
        else:
            raise ValueError(f"unknown shortlist weight {kind!r}")
    return np.nan_to_num(weights, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class Shortlists:
    """Top-L item columns per cluster (NO_ITEM pads a cluster that knows fewer items) with
    their weights, the item ids of the columns, and a global shortlist for users with nothing
    to go on (the same weight computed over all clusters' statistics together)."""

    items: np.ndarray  # (K, L) int64 columns, NO_ITEM for padding
    weights: np.ndarray  # (K, L) float64, 0 for padding
    item_ids: Sequence[str]
    global_items: np.ndarray  # (L,) columns
    global_weights: np.ndarray  # (L,)
    # Retrieval targets t_j of the columns, (items x d): only for the optional re-ranking.
    targets: np.ndarray | None = None

    @property
    def length(self) -> int:
        return int(self.items.shape[1])

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {item_id: column for column, item_id in enumerate(self.item_ids)}

    def columns_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """The columns of the given items; items no shortlist knows are left out."""
        index = self.item_index
        columns = [index.get(item_id) for item_id in item_ids]
        return np.asarray([column for column in columns if column is not None], dtype=np.int64)

    def with_targets(self, targets: np.ndarray) -> Shortlists:
        if targets.shape[0] != len(self.item_ids):
            raise ValueError(f"{targets.shape[0]} targets for {len(self.item_ids)} items")
        return replace(self, targets=targets)

    @classmethod
    def from_weights(
        cls,
        weights: np.ndarray,
        rated: np.ndarray,
        item_ids: Sequence[str],
        length: int,
        global_weights: np.ndarray | None = None,
    ) -> Shortlists:
        """Top ``length`` per cluster among the items the cluster has raters for."""
        items, values = _top_per_row(np.where(rated > 0, weights, -np.inf), length)
        if global_weights is None:
            global_weights = weights.mean(axis=0)
        global_columns, global_values = _top_per_row(
            np.where(rated.sum(axis=0) > 0, global_weights, -np.inf)[None, :], length
        )
        return cls(items, values, list(item_ids), global_columns[0], global_values[0])

    @classmethod
    def from_statistics(
        cls,
        statistics: ClusterStatistics,
        kind: ShortlistWeight,
        length: int,
        now: float | None = None,
        prior_mass: float = DEFAULT_PRIOR_MASS,
    ) -> Shortlists:
        liked, rated, weighted, mass = statistics.read(now)
        weights = shortlist_weights(liked, rated, weighted, mass, kind, prior_mass)
        overall = shortlist_weights(
            liked.sum(0, keepdims=True),
            rated.sum(0, keepdims=True),
            weighted.sum(0, keepdims=True),
            mass.sum(keepdims=True),
            kind,
            prior_mass,
        )[0]
        return cls.from_weights(weights, rated, statistics.item_ids, length, overall)

    def dense(self, items: int | None = None) -> np.ndarray:
        """W restricted to each shortlist, as (K x items) with zeros elsewhere (batch scoring)."""
        items = len(self.item_ids) if items is None else items
        dense = np.zeros((self.items.shape[0], items), dtype=np.float64)
        rows = np.repeat(np.arange(self.items.shape[0]), self.length)
        columns = self.items.ravel()
        kept = columns != NO_ITEM
        dense[rows[kept], columns[kept]] = self.weights.ravel()[kept]
        return dense


def _top_per_row(scores: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    rows, columns = scores.shape
    taken = min(length, columns)
    if taken == 0:
        return (np.full((rows, length), NO_ITEM, dtype=np.int64), np.zeros((rows, length)))
    if taken < columns:
        top = np.argpartition(-scores, taken - 1, axis=1)[:, :taken]
    else:
        top = np.broadcast_to(np.arange(columns), (rows, columns)).copy()
    values = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    items = np.full((rows, length), NO_ITEM, dtype=np.int64)
    weights = np.zeros((rows, length), dtype=np.float64)
    valid = np.isfinite(values)
    items[:, :taken] = np.where(valid, top, NO_ITEM)
    weights[:, :taken] = np.where(valid, values, 0.0)
    return items, weights
