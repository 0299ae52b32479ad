"""What one user adds to the cluster statistics, and the additive deltas between two states.

A user contributes, for each of their top-M clusters c (membership p_c) and each item j with
weight w (made at time t): p_c g(t) max(w, 0) to A_cj, p_c g(t) [w != 0] to C_cj and
p_c g(t) w to the weighted sum; and p_c g(t_last) to the mass M_c (g = 1 without decay).
Any change of the user (a new event, a changed weight, moved memberships) is the new
contribution minus the old one: exact, additive, and in any order with other users' deltas.
Cost O(|S_u| M) when memberships move, O(changed items x M) when they do not.

``contribution_deltas`` computes one user's deltas (with optional forward decay) and is the
reference; ``batch_delta_columns`` computes a whole batch of users' summed deltas in a few
numpy operations, as columns ready for one upsert (the consumer and the rebuild use it).

>>> before = UserContribution(((0, 1.0),), {"a": 1.0})
>>> after = UserContribution(((0, 0.5), (1, 0.5)), {"a": 1.0, "b": -1.0})
>>> items, masses = contribution_deltas(before, after)
>>> [(delta.cluster, delta.item_id, delta.liked_mass, delta.weighted_sum) for delta in items]
[(0, 'a', -0.5, -0.5), (0, 'b', 0.0, -0.5), (1, 'a', 0.5, 0.5), (1, 'b', 0.0, -0.5)]
>>> [(delta.cluster, delta.mass) for delta in masses]
[(0, -0.5), (1, 0.5)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

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


Transition = tuple[UserContribution, UserContribution]


@dataclass(frozen=True, slots=True)
class ClusterDeltaColumns:
    """A batch's summed deltas as columns: row k adds (liked[k], rated[k], weighted[k]) to
    (clusters[k], item_ids[k]), rows sorted by (cluster, item) and unique; mass_changes[k]
    is added to M of mass_clusters[k], sorted and unique. All-zero rows are left out."""

    clusters: np.ndarray  # (rows,) int64
    item_ids: list[str]
    liked: np.ndarray  # (rows,) float64
    rated: np.ndarray
    weighted: np.ndarray
    mass_clusters: np.ndarray  # (clusters,) int64
    mass_changes: np.ndarray  # (clusters,) float64

    @classmethod
    def empty(cls) -> ClusterDeltaColumns:
        no_clusters = np.zeros(0, dtype=np.int64)
        no_values = np.zeros(0, dtype=np.float64)
        return cls(no_clusters, [], no_values, no_values, no_values, no_clusters, no_values)

    def __bool__(self) -> bool:
        return bool(len(self.item_ids) or len(self.mass_clusters))

    def affected_clusters(self) -> set[int]:
        """The clusters whose statistics or mass these deltas change."""
        return set(np.unique(self.clusters).tolist()) | set(self.mass_clusters.tolist())

    def item_deltas(self) -> list[ClusterItemDelta]:
        return [
            ClusterItemDelta(cluster, item_id, liked, rated, weighted)
            for cluster, item_id, liked, rated, weighted in zip(
                self.clusters.tolist(),
                self.item_ids,
                self.liked.tolist(),
                self.rated.tolist(),
                self.weighted.tolist(),
                strict=True,
            )
        ]

    def mass_deltas(self) -> list[ClusterMassDelta]:
        return [
            ClusterMassDelta(cluster, mass)
            for cluster, mass in zip(
                self.mass_clusters.tolist(), self.mass_changes.tolist(), strict=True
            )
        ]


def batch_contribution_deltas(
    transitions: Sequence[Transition], decay: ForwardDecay | None = None
) -> tuple[list[ClusterItemDelta], list[ClusterMassDelta]]:
    """``batch_delta_columns`` as lists of deltas.

    >>> before = UserContribution(((0, 0.5),), {"i1": 1.0})
    >>> after = UserContribution(((0, 0.5), (1, 1.0)), {"i1": 1.0, "i2": -0.5})
    >>> items, masses = batch_contribution_deltas([(before, after)])
    >>> [(delta.cluster, delta.item_id, delta.liked_mass, delta.weighted_sum) for delta in items]
    [(0, 'i2', 0.0, -0.25), (1, 'i1', 1.0, 1.0), (1, 'i2', 0.0, -0.5)]
    >>> [(delta.cluster, delta.mass) for delta in masses]
    [(1, 1.0)]
    """
    columns = batch_delta_columns(transitions, decay)
    return columns.item_deltas(), columns.mass_deltas()


def batch_delta_columns(
    transitions: Sequence[Transition], decay: ForwardDecay | None = None
) -> ClusterDeltaColumns:
    """The summed deltas that turn statistics holding each ``old`` contribution into ones
    holding the ``new`` one, for many users at once: ``contribution_deltas`` summed, decay
    included (each item term scaled by g at its event time, each mass by g at the user's
    last event).

    Done per user, the fixed cost of small numpy calls dominates a batch of a thousand
    events; here every (user, item) row of the batch is crossed with the user's clusters at
    once, and the result summed per (cluster, item). A user whose memberships did not move
    adds rows only for the items whose weight (with decay, or event time) changed.

    >>> decay = ForwardDecay(half_life_seconds=10.0, landmark=0.0)
    >>> old = UserContribution(((0, 1.0),), {"a": 1.0}, {"a": 0.0}, last_event_at=0.0)
    >>> new = UserContribution(((0, 1.0),), {"a": 1.0, "b": 1.0}, {"a": 0.0, "b": 10.0}, 10.0)
    >>> columns = batch_delta_columns([(old, new)], decay)
    >>> columns.item_ids, columns.rated.tolist(), columns.mass_changes.tolist()
    (['b'], [2.0], [1.0])
    """
    if not transitions:
        return ClusterDeltaColumns.empty()
    cluster_lists = [_clusters(old, new) for old, new in transitions]
    width = max(map(len, cluster_lists)) or 1
    cluster_ids = np.zeros((len(transitions), width), dtype=np.int64)
    old_memberships = np.zeros((len(transitions), width))
    new_memberships = np.zeros((len(transitions), width))
    row_users: list[int] = []
    row_items: list[str] = []
    old_weights: list[float] = []
    new_weights: list[float] = []
    old_times: list[float] = []
    new_times: list[float] = []
    absent = math.nan
    untimed = 0.0 if decay is None else decay.landmark  # g = 1, as contribution_deltas
    for user, ((old, new), clusters) in enumerate(zip(transitions, cluster_lists, strict=True)):
        cluster_ids[user, : len(clusters)] = clusters
        old_memberships[user, : len(clusters)] = _aligned(old.top_clusters, clusters)
        new_memberships[user, : len(clusters)] = _aligned(new.top_clusters, clusters)
        moved = tuple(old.top_clusters) != tuple(new.top_clusters)
        old_by_item, new_by_item = old.weights, new.weights
        for item_id in old_by_item.keys() | new_by_item.keys():
            old_weight = old_by_item.get(item_id, absent)
            new_weight = new_by_item.get(item_id, absent)
            old_time = old.timestamps.get(item_id, untimed)
            new_time = new.timestamps.get(item_id, untimed)
            # NaN != NaN, but an item absent before and after is in neither mapping.
            if moved or old_weight != new_weight or (decay is not None and old_time != new_time):
                row_users.append(user)
                row_items.append(item_id)
                old_weights.append(old_weight)
                new_weights.append(new_weight)
                old_times.append(old_time)
                new_times.append(new_time)
    if decay is None:
        mass_changes_by_user = new_memberships - old_memberships
    else:
        mass_changes_by_user = new_memberships * _user_factors(
            decay, [new for _, new in transitions]
        ) - old_memberships * _user_factors(decay, [old for old, _ in transitions])
    mass_clusters, mass_changes = _summed_mass_changes(cluster_ids, mass_changes_by_user)
    if not row_items:
        return replace(
            ClusterDeltaColumns.empty(), mass_clusters=mass_clusters, mass_changes=mass_changes
        )
    users = np.asarray(row_users)
    old_terms = _batch_terms(np.asarray(old_weights), old_memberships[users])
    new_terms = _batch_terms(np.asarray(new_weights), new_memberships[users])
    if decay is not None:
        old_terms *= decay.factor(np.asarray(old_times))[:, None, None]
        new_terms *= decay.factor(np.asarray(new_times))[:, None, None]
    deltas = new_terms - old_terms  # (rows, width, 3)
    # Sorted like np.unique would, in a third of its time (it sorts every row's string).
    item_vocabulary = sorted(set(row_items))
    item_column = {item_id: column for column, item_id in enumerate(item_vocabulary)}
    item_columns = np.fromiter(
        map(item_column.__getitem__, row_items), dtype=np.int64, count=len(row_items)
    )
    keys = cluster_ids[users] * len(item_vocabulary) + item_columns[:, None]
    distinct, inverse = np.unique(keys.ravel(), return_inverse=True)
    totals = [
        np.bincount(inverse, weights=deltas[..., part].ravel(), minlength=len(distinct))
        for part in range(3)
    ]
    nonzero = (totals[0] != 0) | (totals[1] != 0) | (totals[2] != 0)
    kept = distinct[nonzero]
    return ClusterDeltaColumns(
        clusters=(kept // len(item_vocabulary)).astype(np.int64),
        item_ids=[item_vocabulary[column] for column in (kept % len(item_vocabulary)).tolist()],
        liked=totals[0][nonzero],
        rated=totals[1][nonzero],
        weighted=totals[2][nonzero],
        mass_clusters=mass_clusters,
        mass_changes=mass_changes,
    )


def _user_factors(decay: ForwardDecay, contributions: Sequence[UserContribution]) -> np.ndarray:
    """(users, 1): g at each user's last event, the scale of their mass."""
    times = np.fromiter((c.last_event_at for c in contributions), dtype=np.float64)
    return decay.factor(times)[:, None]


def _clusters(old: UserContribution, new: UserContribution) -> list[int]:
    return sorted({cluster for cluster, _ in old.top_clusters} | {c for c, _ in new.top_clusters})


def _aligned(pairs: Sequence[tuple[int, float]], clusters: Sequence[int]) -> list[float]:
    memberships = dict(pairs)
    return [memberships.get(cluster, 0.0) for cluster in clusters]


def _batch_terms(weights: np.ndarray, memberships: np.ndarray) -> np.ndarray:
    """(rows, width, 3): membership times (max(w, 0), [w != 0], w); zero where w is absent."""
    present = ~np.isnan(weights)
    values = np.where(present, weights, 0.0)
    parts = np.stack([np.maximum(values, 0.0), (values != 0.0) & present, values], axis=1)
    return memberships[:, :, None] * parts[:, None, :]


def _summed_mass_changes(
    cluster_ids: np.ndarray, changes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    clusters, inverse = np.unique(cluster_ids.ravel(), return_inverse=True)
    totals = np.bincount(inverse, weights=changes.ravel(), minlength=len(clusters))
    nonzero = totals != 0
    return clusters[nonzero].astype(np.int64), totals[nonzero]
