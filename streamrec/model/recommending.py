"""Cluster voting: the recommendations of users from their top-M clusters' shortlists.

score(u, j) = sum over u's top clusters c of p_uc * W_cj, over the union of their shortlists,
without the items u already has; the top N are kept, re-ranked by the retrieval score when
configured. The cost is O(M * L) whatever the number of users or items. A user the model
knows nothing about gets the global shortlist: the vote of the M heaviest clusters, weighted
by their share of the mass. Shortlists are chosen from a cluster's additive statistics.

>>> shortlists = {0: [("i1", 0.9), ("i2", 0.5)], 1: [("i2", 0.8), ("i3", 0.1)]}
>>> [(item.item_id, round(item.score, 2)) for item in
...  vote(((0, 1.0), (1, 0.5)), shortlists, seen={"i1"}, count=5)]
[('i2', 0.9), ('i3', 0.05)]
>>> global_top_clusters({0: 3.0, 1: 1.0, 2: 0.0}, count=2)
((0, 0.75), (1, 0.25))
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

from streamrec.config import ServingSettings
from streamrec.events import RecommendedItem
from streamrec.model.explanations import lead_clusters
from streamrec.model.serving import FeatureLoader, ServingModel
from streamrec.model.shortlists import NO_ITEM, shortlist_weights
from streamrec.model.voting import vote_many
from streamrec.state import ClusterItemStatistics

Shortlist = Sequence[tuple[str, float]]
TopClusters = tuple[tuple[int, float], ...]
# Per recommended item, the cluster that contributed most to its vote and its share of it
# (None in a fused list for an item the vote did not put there).
LeadClusters = tuple[tuple[int, float] | None, ...]
# Per item of a fused list, the source with the largest share of its fused score and that
# share (model.rank_fusion); empty when the list is the vote alone.
LeadSources = tuple[tuple[str, float], ...]
# Decimals of a published lead share: the compact form is for reading, not for arithmetic.
LEAD_SHARE_DECIMALS = 3

# Only rated_share follows the rated-mass order the statistics are indexed by; the other
# weights choose their shortlist from a wider pool of the cluster's most rated items.
POOL_FACTOR = 4


def shortlist_pool_size(settings: ServingSettings) -> int:
    """How many of a cluster's most rated items its shortlist is chosen from. rated_share
    is C_cj / M_c, so its top L is exactly the top L by rated mass.

    >>> shortlist_pool_size(ServingSettings(shortlist_length=10, shortlist_weight="rated_share"))
    10
    >>> shortlist_pool_size(ServingSettings(shortlist_length=10, shortlist_weight="share"))
    40
    """
    if settings.shortlist_weight == "rated_share":
        return settings.shortlist_length
    return settings.shortlist_length * POOL_FACTOR


def shortlist_from_statistics(
    statistics: Sequence[ClusterItemStatistics], mass: float, settings: ServingSettings
) -> list[tuple[str, float]]:
    """The cluster's top-L items by the configured shortlist weight W_cj (best first), among
    the items the cluster has raters for, as the model's offline shortlists choose them."""
    rated = [item for item in statistics if item.rated_mass > 0.0]
    if not rated:
        return []
    weights = shortlist_weights(
        np.array([[item.liked_mass for item in rated]]),
        np.array([[item.rated_mass for item in rated]]),
        np.array([[item.weighted_sum for item in rated]]),
        np.array([mass]),
        settings.shortlist_weight,
    )[0]
    scored = [(item.item_id, float(weight)) for item, weight in zip(rated, weights, strict=True)]
    return _best(scored, settings.shortlist_length)


def vote(
    top_clusters: TopClusters,
    shortlists: Mapping[int, Shortlist],
    seen: Collection[str],
    count: int,
    reranking: Reranking | None = None,
) -> list[RecommendedItem]:
    """Cluster voting for one user: the ``count`` best unseen items of the clusters'
    shortlists."""
    return vote_for_users([top_clusters], shortlists, [seen], count, reranking)[0]


@dataclass(frozen=True)
class Reranking:
    """What re-ranking the candidates of a batch of users needs (model.voting.reranked_scores):
    each user's retrieval query P z_u as a row of ``queries`` (a row of NaN for a user
    without a profile, who keeps the votes), the items' targets t_j, and the weight of the
    log of the vote."""

    queries: np.ndarray
    targets: Callable[[Sequence[str]], Mapping[str, np.ndarray]]
    vote_weight: float

    def scores(self, item_ids: Sequence[str]) -> np.ndarray:
        """(users x items) retrieval scores query . t_j; a NaN query row stays NaN."""
        targets = self.targets(item_ids)
        matrix = np.stack([targets[item_id] for item_id in item_ids]).astype(np.float64)
        return self.queries @ matrix.T


def reranking_for(
    serving: ServingModel,
    profiles: Sequence[np.ndarray | None],
    settings: ServingSettings,
    load_features: FeatureLoader,
) -> Reranking | None:
    """The re-ranking of users with these profiles z_u under the serving model, or None
    when the configuration votes only."""
    if not settings.rerank:
        return None
    queries = np.full((len(profiles), serving.model.architecture.item_dim), np.nan)
    known = [row for row, profile in enumerate(profiles) if profile is not None]
    if known:
        profiles_known = np.stack([profiles[row] for row in known])
        queries[known] = serving.model.retrieval_queries(profiles_known)
    return Reranking(
        queries,
        lambda item_ids: serving.item_targets(item_ids, load_features),
        settings.rerank_vote_weight,
    )


def vote_for_users(
    top_clusters: Sequence[TopClusters],
    shortlists: Mapping[int, Shortlist],
    seen: Sequence[Collection[str]],
    count: int,
    reranking: Reranking | None = None,
) -> list[list[RecommendedItem]]:
    """Cluster voting for many users at once (one matrix product; see model.voting), the
    candidates re-ranked if ``reranking`` is given."""
    voted = _voted_columns(top_clusters, shortlists, seen, count, reranking)
    return _recommended_items(voted)


def vote_with_leads(
    top_clusters: Sequence[TopClusters],
    shortlists: Mapping[int, Shortlist],
    seen: Sequence[Collection[str]],
    count: int,
    reranking: Reranking | None = None,
) -> tuple[list[list[RecommendedItem]], list[LeadClusters]]:
    """``vote_for_users``, and for each user's items their lead clusters: the cluster that
    contributed most to each item's vote, with its share rounded to LEAD_SHARE_DECIMALS
    (``model.explanations.lead_clusters``; what a recommendation message carries)."""
    voted = _voted_columns(top_clusters, shortlists, seen, count, reranking, with_leads=True)
    items = _recommended_items(voted)
    if voted.lead_clusters is None or voted.lead_shares is None:
        return items, [() for _ in items]
    leads = [
        tuple(zip(row_clusters[: len(row_items)], row_shares[: len(row_items)], strict=True))
        for row_items, row_clusters, row_shares in zip(
            items, voted.lead_clusters.tolist(), voted.lead_shares.tolist(), strict=True
        )
    ]
    return items, leads


def _recommended_items(voted: _Voted) -> list[list[RecommendedItem]]:
    item_ids = voted.item_ids
    # tolist() gives plain ints and floats; _make builds each entry without keyword handling.
    entry = RecommendedItem._make
    return [
        [
            entry((item_ids[column], score))
            for column, score in zip(row_columns, row_scores, strict=True)
            if column != NO_ITEM
        ]
        for row_columns, row_scores in zip(
            voted.columns.tolist(), voted.scores.tolist(), strict=True
        )
    ]


@dataclass(frozen=True, slots=True)
class _Voted:
    """The candidate item ids, each user's recommended columns into them with scores
    (NO_ITEM where fewer than ``count`` candidates are left), and, if asked for, each
    entry's lead cluster id and share."""

    item_ids: list[str]
    columns: np.ndarray
    scores: np.ndarray
    lead_clusters: np.ndarray | None = None
    lead_shares: np.ndarray | None = None


def _voted_columns(
    top_clusters: Sequence[TopClusters],
    shortlists: Mapping[int, Shortlist],
    seen: Sequence[Collection[str]],
    count: int,
    reranking: Reranking | None,
    with_leads: bool = False,
) -> _Voted:
    """Each user's vote (``_Voted``), with the lead clusters if ``with_leads``."""
    clusters = sorted(shortlists)
    item_ids = sorted({item_id for shortlist in shortlists.values() for item_id, _ in shortlist})
    if not clusters or not item_ids:
        empty = np.full((len(top_clusters), 0), NO_ITEM)
        return _Voted(item_ids, empty, empty.astype(np.float64), empty, empty.astype(np.float64))
    if len(seen) != len(top_clusters):
        raise ValueError("one collection of seen items per user is needed")
    cluster_row = {cluster: row for row, cluster in enumerate(clusters)}
    item_column = {item_id: column for column, item_id in enumerate(item_ids)}
    dense = np.zeros((len(clusters), len(item_ids)))
    _fill(
        dense,
        [[item_id for item_id, _ in shortlists[cluster]] for cluster in clusters],
        item_column,
        [weight for cluster in clusters for _, weight in shortlists[cluster]],
    )
    memberships = np.zeros((len(top_clusters), len(clusters)))
    _fill(
        memberships,
        [[cluster for cluster, _ in pairs] for pairs in top_clusters],
        cluster_row,
        [membership for pairs in top_clusters for _, membership in pairs],
    )
    excluded = np.zeros((len(top_clusters), len(item_ids)), dtype=bool)
    _fill(excluded, seen, item_column, True)
    retrieval = None if reranking is None else reranking.scores(item_ids)
    vote_weight = 0.0 if reranking is None else reranking.vote_weight
    columns, scores = vote_many(dense, memberships, excluded, count, retrieval, vote_weight)
    if not with_leads:
        return _Voted(item_ids, columns, scores)
    depth = max(map(len, top_clusters), default=0)
    rows, shares = lead_clusters(dense, memberships, columns, depth)
    return _Voted(
        item_ids,
        columns,
        scores,
        np.asarray(clusters, dtype=np.int64)[rows],
        shares.round(LEAD_SHARE_DECIMALS),
    )


def _fill(
    matrix: np.ndarray,
    keys_by_row: Sequence[Collection[Hashable]],
    column_of: Mapping[Hashable, int],
    values: Sequence[float] | bool,
) -> None:
    """Set ``matrix[row, column_of[key]]`` for every key of every row of ``keys_by_row``
    that ``column_of`` knows (the others are skipped), to ``values`` (a flat sequence, one
    value per key, in the same order) or to a single bool. One fancy assignment with the
    columns looked up through ``map``: assigning entry by entry cost more than the vote.

    >>> matrix = np.zeros((2, 3))
    >>> _fill(matrix, [["b", "x"], ["a"]], {"a": 0, "b": 1, "c": 2}, [0.5, 9.0, 0.25])
    >>> matrix.tolist()
    [[0.0, 0.5, 0.0], [0.25, 0.0, 0.0]]
    """
    lengths = [len(keys) for keys in keys_by_row]
    rows = np.repeat(np.arange(len(lengths)), lengths)
    columns = np.fromiter(
        map(column_of.get, chain.from_iterable(keys_by_row), repeat(-1)),
        dtype=np.int64,
        count=len(rows),
    )
    known = columns >= 0
    if isinstance(values, bool):
        matrix[rows[known], columns[known]] = values
    else:
        matrix[rows[known], columns[known]] = np.asarray(values, dtype=matrix.dtype)[known]


def global_top_clusters(masses: Mapping[int, float], count: int) -> TopClusters:
    """The ``count`` heaviest clusters with their share of the total mass: the memberships of
    a user the model knows nothing about."""
    positive = {cluster: mass for cluster, mass in masses.items() if mass > 0.0}
    total = sum(positive.values())
    if total <= 0.0:
        return ()
    heaviest = sorted(positive.items(), key=lambda pair: (-pair[1], pair[0]))[:count]
    return tuple((cluster, mass / total) for cluster, mass in heaviest)


def _best(scored: Iterable[tuple[str, float]], count: int) -> list[tuple[str, float]]:
    # Ties go to the smaller item id, so every consumer ranks alike.
    return sorted(scored, key=lambda pair: (-pair[1], pair[0]))[:count]
