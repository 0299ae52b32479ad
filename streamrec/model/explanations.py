"""Why an item was recommended: which of the user's clusters voted for it, and how much.

An item's vote is a sum over the user's top-M clusters (``model.voting``):

    vote(u, j) = sum over c of p_uc * W_cj

so each cluster's *contribution* is p_uc * W_cj (W_cj is 0 when j is not in c's shortlist),
and its **share** is |p_uc W_cj| / sum over c' of |p_uc' W_c'j|: in [0, 1], summing to 1 over
the item's clusters. With the shortlist weights ``share`` and ``rated_share`` (the default)
every W_cj >= 0, so a share is exactly the cluster's part of the vote; the mean weights can
be negative, which the absolute values keep on the same 0-1 scale.

The item's **support** is the vote divided by the user's total membership,
sum of p_uc W_cj / sum of p_uc: the membership-weighted mean of W_cj over the user's
clusters. It lies in [0, 1] for ``share`` and ``rated_share`` (for ``rated_share``: the share
of the user's clusters, weighted by membership, that interacted with the item) and in
[-1, 1] for the mean weights. The ranking **score** is the vote itself, or, with re-ranking,
the retrieval score plus ``vote_weight * log(vote)``; ``retrieval`` gives that first part.

With the item neighbours or the decayed popularity on, the vote is one of several
candidate lists fused by rank (``model.rank_fusion``), and the clusters are one **source**
among them. An item's ``sources`` then say which lists put it there, each with its share of
the item's fused score (0-1, summing to 1 over the item's sources), its rank and score in
that list, and for the neighbours the user's recent items that named the item, each with
its share of the neighbours' score for it (``item_neighbours.naming_recent_items``). Its
``clusters`` are still the clusters whose shortlists hold it: an item the vote ranked below
the list's length may have some although the vote did not put it there. The fused list's
score is the fused score; the retrieval part is that of the vote's own score, and only
for an item the vote put there.

The consumer publishes the compact form, each item's lead cluster and its share
(``lead_clusters``, one vectorised pass over the recommended entries) and, for a fused list,
each item's lead source and its share; ``explain`` gives the whole picture for one user
from the same numbers.

>>> shortlists = {0: [("a", 0.8), ("b", 0.4)], 3: [("b", 0.6)]}
>>> [why] = explain([("b", 0.44)], ((0, 0.5), (3, 0.4)), shortlists)
>>> why.item_id, round(why.vote, 2), round(why.support, 3)
('b', 0.44, 0.489)
>>> [(vote.cluster, round(vote.contribution, 2), round(vote.share, 3)) for vote in why.clusters]
[(3, 0.24, 0.545), (0, 0.2, 0.455)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from streamrec.model.rank_fusion import FusedItem, RankedList, Source
from streamrec.model.shortlists import NO_ITEM
from streamrec.model.voting import SMALLEST_VOTE


class ScoreScale(StrEnum):
    """What a list's scores are, and so their scale (docs/api.md)."""

    VOTE = "vote"  # sum of p_uc W_cj: 0-1 with the share weights over a total membership of 1
    RERANKED = "reranked"  # retrieval + vote_weight * log(vote): unbounded
    FUSED = "fused"  # sum of weight / (60 + rank) over the sources: (0, sum of weights / 61]
    POPULARITY = "popularity"  # the popularity fallback: relative to the most popular, (0, 1]

    @classmethod
    def of(cls, fused: bool, popular_fallback: bool, reranked: bool) -> ScoreScale:
        """The scale of a list that was ``fused``, else the ``popular_fallback``'s, else
        ``reranked`` or the plain vote."""
        if fused:
            return cls.FUSED
        if popular_fallback:
            return cls.POPULARITY
        return cls.RERANKED if reranked else cls.VOTE


@dataclass(frozen=True, slots=True)
class ClusterVote:
    """One cluster's part in an item's vote: the user's membership p_uc, the cluster's
    shortlist weight W_cj (0 when the item is not on its shortlist), their product, and the
    product's share of the item's vote (``explain`` says how it is computed)."""

    cluster: int
    membership: float
    weight: float
    contribution: float
    share: float


@dataclass(frozen=True, slots=True)
class RecentItem:
    """One of the user's recent items that named a recommended item as its neighbour, and
    its share of the neighbours' score for the item: recency(r) count(r, j) over the sum
    of that over the recent items that named it (0-1, summing to 1)."""

    item_id: str
    share: float


@dataclass(frozen=True, slots=True)
class SourceShare:
    """One candidate list that put an item on the list: its ``source``, its ``share`` of the
    item's fused score (0-1; 1 without fusion), the item's ``rank`` in it (from 1) and its
    ``score`` there (the vote's, re-ranked or not; the neighbours' co-occurrence score; the
    popularity relative to the most popular item's, in (0, 1]); for the neighbours, the
    recent items that named it, largest share first."""

    source: Source
    share: float
    rank: int
    score: float
    recent_items: tuple[RecentItem, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemExplanation:
    """Why ``item_id`` is on a user's list: its ranking score, its vote and support, the
    clusters that voted for it (largest contribution first), with re-ranking the retrieval
    part of the vote's score, and, when given, the sources that put it there (largest share
    first)."""

    item_id: str
    score: float
    vote: float
    support: float
    clusters: tuple[ClusterVote, ...]
    retrieval: float | None = None
    sources: tuple[SourceShare, ...] = ()

    @property
    def lead(self) -> ClusterVote | None:
        """The cluster that contributed most, the one the published message names; None
        when no cluster voted for the item, or the vote did not put it on the list."""
        if not self.clusters or (self.sources and self.source(Source.CLUSTERS) is None):
            return None
        return self.clusters[0]

    @property
    def lead_source(self) -> SourceShare | None:
        """The source with the largest share, the one a fused list's message names."""
        return self.sources[0] if self.sources else None

    def source(self, source: Source) -> SourceShare | None:
        """This item's part from ``source``; None when that source did not name it."""
        return next((part for part in self.sources if part.source == source), None)


def item_sources(
    fused: FusedItem,
    lists: Sequence[RankedList],
    named_by: Mapping[str, Sequence[tuple[str, float]]] | None = None,
) -> tuple[SourceShare, ...]:
    """The sources of one item of a fused list: each of ``lists`` (in ``fuse_lists``'s
    order, the vote first) that names it, largest share first (ties in the lists' order);
    ``named_by`` gives the neighbours' recent items per item (``recent_items`` of the
    neighbours' part).

    >>> from streamrec.events import RecommendedItem as Item
    >>> from streamrec.model.rank_fusion import fuse_lists
    >>> voted = RankedList([Item("a", 0.9), Item("b", 0.4)], 0.3)
    >>> neighbours = RankedList([Item("b", 7.0)], 0.7, Source.NEIGHBOURS)
    >>> first = fuse_lists(voted, [neighbours], count=2)[0]
    >>> parts = item_sources(first, [voted, neighbours], {"b": [("x", 1.0)]})
    >>> [(part.source.value, round(part.share, 2), part.rank, part.score) for part in parts]
    [('neighbours', 0.7, 1, 7.0), ('clusters', 0.3, 2, 0.4)]
    >>> parts[0].recent_items
    (RecentItem(item_id='x', share=1.0),)
    """
    parts = []
    for ranked, rank, share in zip(lists, fused.ranks, fused.shares, strict=True):
        if rank is None:
            continue
        recent = ()
        if ranked.source == Source.NEIGHBOURS and named_by is not None:
            named = named_by.get(fused.item.item_id, ())
            recent = tuple(RecentItem(item_id, part) for item_id, part in named)
        parts.append(SourceShare(ranked.source, share, rank, ranked.items[rank - 1].score, recent))
    # sorted is stable: equal shares keep the lists' order, as FusedItem.lead does.
    return tuple(sorted(parts, key=lambda part: -part.share))


def explain(
    items: Sequence[tuple[str, float]],
    top_clusters: Sequence[tuple[int, float]],
    shortlists: Mapping[int, Sequence[tuple[str, float]]],
    vote_weight: float | None = None,
    sources: Sequence[tuple[SourceShare, ...]] | None = None,
) -> list[ItemExplanation]:
    """The explanation of each recommended ``(item_id, score)`` for a user with these
    ``top_clusters`` (cluster, membership) voting over these ``shortlists``. Clusters that
    did not vote for an item (W_cj = 0) are left out of its list. ``vote_weight`` is given
    when the scores were re-ranked (``serving.rerank_vote_weight``): the retrieval part is then
    the vote's score minus ``vote_weight * log(vote)``, as ``voting.reranked_scores`` added
    it. ``sources`` (one tuple per item, from the vote: ``item_sources``) are kept with each
    item; the vote's score is then the clusters' source's (none: no retrieval part).

    >>> [why] = explain([("a", 1.2)], ((0, 1.0),), {0: [("a", 0.5)]}, vote_weight=0.5)
    >>> round(why.retrieval, 4) == round(1.2 - 0.5 * math.log(0.5), 4), why.lead.share
    (True, 1.0)
    """
    weights = {
        cluster: dict(shortlists.get(cluster, ()))
        for cluster, _ in top_clusters
        if cluster in shortlists
    }
    total_membership = sum(membership for _, membership in top_clusters)
    if sources is not None and len(sources) != len(items):
        raise ValueError("one tuple of sources per item is needed")
    explained = []
    for row, (item_id, score) in enumerate(items):
        parts = () if sources is None else sources[row]
        contributions = [
            (cluster, membership, weight, membership * weight)
            for cluster, membership in top_clusters
            if (weight := weights.get(cluster, {}).get(item_id, 0.0)) != 0.0
        ]
        vote = sum(contribution for *_, contribution in contributions)
        magnitude = sum(abs(contribution) for *_, contribution in contributions)
        clusters = tuple(
            ClusterVote(
                cluster,
                membership,
                weight,
                contribution,
                abs(contribution) / magnitude if magnitude > 0.0 else 0.0,
            )
            # Largest contribution first; ties go to the smaller cluster id.
            for cluster, membership, weight, contribution in sorted(
                contributions, key=lambda entry: (-abs(entry[3]), entry[0])
            )
        )
        retrieval = None
        voted_score = _voted_score(score, parts)
        if vote_weight is not None and voted_score is not None:
            retrieval = voted_score - vote_weight * math.log(max(vote, SMALLEST_VOTE))
        support = vote / total_membership if total_membership > 0.0 else 0.0
        explained.append(ItemExplanation(item_id, score, vote, support, clusters, retrieval, parts))
    return explained


def _voted_score(score: float, sources: Sequence[SourceShare]) -> float | None:
    """The item's score in the vote: the list's own without sources, else the clusters'
    source's (None when the vote did not put the item there)."""
    if not sources:
        return score
    return next((part.score for part in sources if part.source == Source.CLUSTERS), None)


def lead_clusters(
    dense_shortlists: np.ndarray,
    top_memberships: np.ndarray,
    columns: np.ndarray,
    depth: int,
) -> tuple[np.ndarray, np.ndarray]:
    """For each recommended entry, the row of the cluster with the largest |p_uc W_cj| and
    that contribution's share of the entry's sum of |p_uc W_cj|: the compact explanation
    the consumer publishes, for a whole batch in one pass.

    ``dense_shortlists`` (clusters x items) and ``top_memberships`` (users x clusters, zero
    outside each user's top M) are ``voting.vote_many``'s inputs, ``columns`` (users x N)
    its recommended columns (NO_ITEM where the list is shorter) and ``depth`` the most
    clusters any user has. Only each user's ``depth`` strongest clusters are read, so the
    cost is O(users x depth x N), not O(users x clusters x N). Returns (cluster rows, shares),
    each (users x N); a NO_ITEM entry gets share 0.

    >>> dense = np.array([[0.8, 0.4], [0.0, 0.6]])
    >>> rows, shares = lead_clusters(dense, np.array([[0.5, 0.4]]), np.array([[1, 0]]), 2)
    >>> rows.tolist(), shares.round(3).tolist()
    ([[1, 0]], [[0.545, 1.0]])
    """
    users, count = columns.shape
    if users == 0 or count == 0 or top_memberships.shape[1] == 0:
        return np.zeros(columns.shape, dtype=np.int64), np.zeros(columns.shape)
    rows = _strongest_rows(top_memberships, max(1, min(depth, top_memberships.shape[1])))
    present = columns != NO_ITEM
    safe_columns = np.where(present, columns, 0)
    # (users x depth x N): each user's clusters' weights of each recommended item, then
    # their contributions |p_uc W_cj|, computed in place (this runs once per batch).
    contributions = dense_shortlists[rows[:, :, None], safe_columns[:, None, :]]
    memberships = np.take_along_axis(top_memberships, rows, axis=1)
    np.multiply(contributions, memberships[:, :, None], out=contributions)
    np.abs(contributions, out=contributions)
    best = contributions.argmax(axis=1)
    largest = np.take_along_axis(contributions, best[:, None, :], axis=1)[:, 0, :]
    total = contributions.sum(axis=1)
    shares = np.divide(largest, total, out=np.zeros_like(largest), where=present & (total > 0))
    return np.take_along_axis(rows, best, axis=1), shares


def _strongest_rows(top_memberships: np.ndarray, depth: int) -> np.ndarray:
    """(users x depth) column indices of each user's non-zero memberships, padded with
    columns whose membership is 0 (they contribute nothing). A user has at most ``depth``
    non-zero memberships, so no ordering is needed: reading the non-zero entries is cheaper
    than a partition of every row.

    >>> _strongest_rows(np.array([[0.0, 0.7, 0.2], [0.5, 0.0, 0.0]]), 2).tolist()
    [[1, 2], [0, 1]]
    """
    users = top_memberships.shape[0]
    user_of, cluster_of = np.nonzero(top_memberships)
    if np.bincount(user_of, minlength=users).max(initial=0) > depth:
        # More non-zero memberships than asked for: keep the strongest.
        return np.argpartition(-np.abs(top_memberships), depth - 1, axis=1)[:, :depth]
    starts = np.searchsorted(user_of, np.arange(users))
    rows = np.empty((users, depth), dtype=np.int64)
    # Padding: the first zero-membership column of each user, so it adds nothing.
    rows[:] = np.argmin(top_memberships != 0, axis=1)[:, None]
    rows[user_of, np.arange(len(user_of)) - starts[user_of]] = cluster_of
    return rows
