"""The cluster-statistic deltas of a whole batch of users, in a few numpy operations.

Each user's delta is their new contribution minus their old one (see
``streamrec.model.contributions``, which computes it for one user and is the reference this
module is tested against). Done per user, the fixed cost of small numpy calls dominates a batch
of a thousand events; here every (user, item) row of the batch is crossed with the user's
clusters at once, and the result summed per (cluster, item).

>>> from streamrec.model.contributions import UserContribution
>>> before = UserContribution(((0, 0.5),), {"i1": 1.0})
>>> after = UserContribution(((0, 0.5), (1, 1.0)), {"i1": 1.0, "i2": -0.5})
>>> items, masses = batch_contribution_deltas([(before, after)])
>>> [(delta.cluster, delta.item_id, delta.liked_mass, delta.weighted_sum) for delta in items]
[(0, 'i2', 0.0, -0.25), (1, 'i1', 1.0, 1.0), (1, 'i2', 0.0, -0.5)]
>>> [(delta.cluster, delta.mass) for delta in masses]
[(1, 1.0)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.model.contributions import UserContribution
from streamrec.state import ClusterItemDelta, ClusterMassDelta

Transition = tuple[UserContribution, UserContribution]


def batch_contribution_deltas(
    transitions: Sequence[Transition],
) -> tuple[list[ClusterItemDelta], list[ClusterMassDelta]]:
    """Deltas turning statistics that hold each ``old`` contribution into ones holding the
    ``new`` one, summed per (cluster, item) and sorted by key; all-zero deltas left out."""
    if not transitions:
        return [], []
    width = max(len(_clusters(old, new)) for old, new in transitions) or 1
    cluster_ids = np.zeros((len(transitions), width), dtype=np.int64)
    old_memberships = np.zeros((len(transitions), width))
    new_memberships = np.zeros((len(transitions), width))
    row_users: list[int] = []
    row_items: list[str] = []
    old_weights: list[float] = []
    new_weights: list[float] = []
    for user, (old, new) in enumerate(transitions):
        clusters = _clusters(old, new)
        cluster_ids[user, : len(clusters)] = clusters
        old_memberships[user, : len(clusters)] = _aligned(old.top_clusters, clusters)
        new_memberships[user, : len(clusters)] = _aligned(new.top_clusters, clusters)
        moved = tuple(old.top_clusters) != tuple(new.top_clusters)
        for item_id in old.weights.keys() | new.weights.keys():
            old_weight, new_weight = old.weights.get(item_id), new.weights.get(item_id)
            if moved or old_weight != new_weight:
                row_users.append(user)
                row_items.append(item_id)
                old_weights.append(np.nan if old_weight is None else old_weight)
                new_weights.append(np.nan if new_weight is None else new_weight)
    mass_deltas = _mass_deltas(cluster_ids, new_memberships - old_memberships)
    if not row_items:
        return [], mass_deltas
    users = np.asarray(row_users)
    old_terms = _terms(np.asarray(old_weights), old_memberships[users])
    new_terms = _terms(np.asarray(new_weights), new_memberships[users])
    deltas = new_terms - old_terms  # (rows, width, 3)
    item_vocabulary, item_columns = np.unique(np.asarray(row_items), return_inverse=True)
    keys = cluster_ids[users] * len(item_vocabulary) + item_columns[:, None]
    distinct, inverse = np.unique(keys.ravel(), return_inverse=True)
    totals = np.stack(
        [
            np.bincount(inverse, weights=deltas[..., part].ravel(), minlength=len(distinct))
            for part in range(3)
        ],
        axis=1,
    )
    item_deltas = [
        ClusterItemDelta(
            int(key // len(item_vocabulary)),
            str(item_vocabulary[key % len(item_vocabulary)]),
            float(liked),
            float(rated),
            float(weighted),
        )
        for key, (liked, rated, weighted) in zip(distinct.tolist(), totals, strict=True)
        if liked or rated or weighted
    ]
    return item_deltas, mass_deltas


def _clusters(old: UserContribution, new: UserContribution) -> list[int]:
    return sorted({cluster for cluster, _ in old.top_clusters} | {c for c, _ in new.top_clusters})


def _aligned(pairs: Sequence[tuple[int, float]], clusters: Sequence[int]) -> list[float]:
    memberships = dict(pairs)
    return [memberships.get(cluster, 0.0) for cluster in clusters]


def _terms(weights: np.ndarray, memberships: np.ndarray) -> np.ndarray:
    """(rows, width, 3): membership times (max(w, 0), [w != 0], w); zero where w is absent."""
    present = ~np.isnan(weights)
    values = np.where(present, weights, 0.0)
    parts = np.stack([np.maximum(values, 0.0), (values != 0.0) & present, values], axis=1)
    return memberships[:, :, None] * parts[:, None, :]


def _mass_deltas(cluster_ids: np.ndarray, changes: np.ndarray) -> list[ClusterMassDelta]:
    clusters, inverse = np.unique(cluster_ids.ravel(), return_inverse=True)
    totals = np.bincount(inverse, weights=changes.ravel(), minlength=len(clusters))
    return [
        ClusterMassDelta(int(cluster), float(total))
        for cluster, total in zip(clusters.tolist(), totals, strict=True)
        if total
    ]
