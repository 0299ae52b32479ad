"""What one user adds to the cluster statistics, and the additive deltas between two states.

A user contributes, for each of their top-M clusters c (membership p_c) and each item j with
weight w (made at time t): p_c g(t) max(w, 0) to A_cj, p_c g(t) [w != 0] to C_cj and
p_c g(t) w to the weighted sum; and p_c g(t_last) to the mass M_c (g = 1 without decay).
Any change of the user (a new event, a changed weight, moved memberships) is the new
contribution minus the old one: exact, additive, and in any order with other users' deltas.
Cost O(|S_u| M) when memberships move, O(changed items x M) when they do not.

>>> before = UserContribution(((0, 1.0),), {"a": 1.0})
>>> after = UserContribution(((0, 0.5), (1, 0.5)), {"a": 1.0, "b": -1.0})
>>> items, masses = contribution_deltas(before, after)
>>> [(delta.cluster, delta.item_id, delta.liked_mass, delta.weighted_sum) for delta in items]
[(0, 'a', -0.5, -0.5), (0, 'b', 0.0, -0.5), (1, 'a', 0.5, 0.5), (1, 'b', 0.0, -0.5)]
>>> [(delta.cluster, delta.mass) for delta in masses]
[(0, -0.5), (1, 0.5)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from streamrec.model.decay import ForwardDecay
from streamrec.state import ClusterItemDelta, ClusterMassDelta

EMPTY: Mapping[str, float] = {}


@dataclass(frozen=True)
class UserContribution:
    """A user as the statistics see them: top-M (cluster, membership) pairs, the weight of
    each item, and (only with decay) each item's event time and the user's last event time."""

    top_clusters: Sequence[tuple[int, float]]
    weights: Mapping[str, float]
    timestamps: Mapping[str, float] = field(default_factory=dict)
    last_event_at: float = 0.0


def contribution_deltas(
    old: UserContribution, new: UserContribution, decay: ForwardDecay | None = None
) -> tuple[list[ClusterItemDelta], list[ClusterMassDelta]]:
    """The deltas that turn the statistics containing ``old`` into ones containing ``new``.
    Pairs whose three components are all zero are left out."""
    memberships_moved = tuple(old.top_clusters) != tuple(new.top_clusters)
    if memberships_moved:
        item_ids = sorted(set(old.weights) | set(new.weights))
    else:
        item_ids = sorted(
            item_id
            for item_id in set(old.weights) | set(new.weights)
            if old.weights.get(item_id) != new.weights.get(item_id)
            or old.timestamps.get(item_id) != new.timestamps.get(item_id)
        )
    clusters = sorted(
        {cluster for cluster, _ in old.top_clusters} | {c for c, _ in new.top_clusters}
    )
    old_terms = _terms(old, clusters, item_ids, decay)
    new_terms = _terms(new, clusters, item_ids, decay)
    liked, rated, weighted = (
        after - before for after, before in zip(new_terms, old_terms, strict=True)
    )
    item_deltas = [
        ClusterItemDelta(
            cluster=cluster,
            item_id=item_ids[column],
            liked_mass=float(liked[row, column]),
            rated_mass=float(rated[row, column]),
            weighted_sum=float(weighted[row, column]),
        )
        for row, cluster in enumerate(clusters)
        for column in range(len(item_ids))
        if liked[row, column] or rated[row, column] or weighted[row, column]
    ]
    mass = _mass(new, clusters, decay) - _mass(old, clusters, decay)
    mass_deltas = [
        ClusterMassDelta(cluster=cluster, mass=float(change))
        for cluster, change in zip(clusters, mass, strict=True)
        if change
    ]
    return item_deltas, mass_deltas


def _memberships(contribution: UserContribution, clusters: Sequence[int]) -> np.ndarray:
    position = {cluster: index for index, cluster in enumerate(clusters)}
    memberships = np.zeros(len(clusters), dtype=np.float64)
    for cluster, membership in contribution.top_clusters:
        memberships[position[cluster]] += membership
    return memberships


def _terms(
    contribution: UserContribution,
    clusters: Sequence[int],
    item_ids: Sequence[str],
    decay: ForwardDecay | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weights = np.array([contribution.weights.get(item, 0.0) for item in item_ids], dtype=np.float64)
    present = np.array([item in contribution.weights for item in item_ids], dtype=bool)
    scale = np.where(present, 1.0, 0.0)
    if decay is not None and len(item_ids):
        times = [contribution.timestamps.get(item, decay.landmark) for item in item_ids]
        scale = scale * decay.factor(np.asarray(times))
    memberships = _memberships(contribution, clusters)[:, None]
    return (
        memberships * (scale * np.maximum(weights, 0.0))[None, :],
        memberships * (scale * (weights != 0))[None, :],
        memberships * (scale * weights)[None, :],
    )


def _mass(
    contribution: UserContribution, clusters: Sequence[int], decay: ForwardDecay | None
) -> np.ndarray:
    scale = 1.0 if decay is None else float(decay.factor(contribution.last_event_at))
    return _memberships(contribution, clusters) * scale


def aggregate_deltas(
    item_deltas: Iterable[ClusterItemDelta], mass_deltas: Iterable[ClusterMassDelta]
) -> tuple[list[ClusterItemDelta], list[ClusterMassDelta]]:
    """Sum deltas of the same (cluster, item) and of the same cluster: fewer writes per batch.

    >>> items, masses = aggregate_deltas(
    ...     [ClusterItemDelta(0, "a", 1.0, 1.0, 1.0), ClusterItemDelta(0, "a", 0.5, 1.0, -1.0)],
    ...     [ClusterMassDelta(3, 0.25), ClusterMassDelta(3, 0.25)])
    >>> items
    [ClusterItemDelta(cluster=0, item_id='a', liked_mass=1.5, rated_mass=2.0, weighted_sum=0.0)]
    >>> masses
    [ClusterMassDelta(cluster=3, mass=0.5)]
    """
    item_totals: dict[tuple[int, str], list[float]] = {}
    for delta in item_deltas:
        totals = item_totals.setdefault((delta.cluster, delta.item_id), [0.0, 0.0, 0.0])
        totals[0] += delta.liked_mass
        totals[1] += delta.rated_mass
        totals[2] += delta.weighted_sum
    mass_totals: dict[int, float] = {}
    for delta in mass_deltas:
        mass_totals[delta.cluster] = mass_totals.get(delta.cluster, 0.0) + delta.mass
    return (
        [
            ClusterItemDelta(cluster, item_id, *totals)
            for (cluster, item_id), totals in sorted(item_totals.items())
        ],
        [ClusterMassDelta(cluster, mass) for cluster, mass in sorted(mass_totals.items())],
    )
