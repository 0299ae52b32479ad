"""Filling a short list: a user who has interacted with most of the items on their clusters'
shortlists gets fewer than N candidates from the vote. The list is filled from the global
fallback, the vote an unknown user gets (``recommending.global_top_clusters``), widened to
every cluster: each cluster weighted by its share of the mass, so with the default
``rated_share`` weights an item's fallback vote is its share of all rated mass, its
popularity. The filling items are voted and re-ranked by the same score as the user's own
(retrieval + w log(vote), their vote being the fallback's), so the list stays ordered by one
score; every item of the user's own vote stays on the list.

A list is filled up to N whenever the shortlists of all clusters together hold N items the
user has not interacted with.

>>> from streamrec.events import RecommendedItem as Item
>>> votes, leads = [[Item("a", 0.9)], [Item("a", 0.8), Item("b", 0.7)]], [(), ()]
>>> shortlists = {0: [("a", 0.5), ("b", 0.4)], 1: [("c", 0.9), ("d", 0.2)]}
>>> def read(clusters):
...     return {cluster: shortlists[cluster] for cluster in clusters}
>>> fill_short_lists(votes, leads, {}, [{"b"}, set()], 2, None,
...                  masses=lambda: {0: 1.0, 1: 1.0}, read_shortlists=read)
>>> [[(item.item_id, round(item.score, 2)) for item in items] for items in votes]
[[('a', 0.9), ('c', 0.45)], [('a', 0.8), ('b', 0.7)]]
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Mapping, Sequence

from streamrec.events import RecommendedItem
from streamrec.model.recommending import (
    LeadClusters,
    Reranking,
    Shortlist,
    global_top_clusters,
    vote_for_users,
    vote_with_leads,
)


def fill_short_lists(
    votes: list[list[RecommendedItem]],
    lead_clusters: list[LeadClusters],
    shortlists: Mapping[int, Shortlist],
    seen: Sequence[Collection[str]],
    count: int,
    reranking: Reranking | None,
    *,
    masses: Callable[[], Mapping[int, float]],
    read_shortlists: Callable[[Collection[int]], Mapping[int, Shortlist]],
    with_leads: bool = False,
    skipped: Sequence[bool] = (),
) -> None:
    """Fill, in place, each list of ``votes`` shorter than ``count`` (unless ``skipped``)
    from the fallback over every cluster (module text), and its ``lead_clusters`` when
    ``with_leads``. ``shortlists`` are those already read; ``masses`` and
    ``read_shortlists`` read the clusters' masses and the other shortlists, once for all
    the short lists, and only when there is one."""
    rows = [
        row
        for row, items in enumerate(votes)
        if len(items) < count and not (row < len(skipped) and skipped[row])
    ]
    if not rows:
        return
    cluster_masses = masses()
    every_cluster = global_top_clusters(cluster_masses, len(cluster_masses))
    if not every_cluster:
        return
    missing = {cluster for cluster, _ in every_cluster} - shortlists.keys()
    every_shortlist = {**shortlists, **read_shortlists(missing)} if missing else shortlists
    # Neither the user's items nor those already on the list are candidates.
    excluded = [set(seen[row]) | {item.item_id for item in votes[row]} for row in rows]
    wanted = count - min(len(votes[row]) for row in rows)
    row_reranking = None
    if reranking is not None:
        row_reranking = Reranking(reranking.queries[rows], reranking.targets, reranking.vote_weight)
    fallback = [every_cluster] * len(rows)
    if with_leads:
        fills, fill_leads = vote_with_leads(
            fallback, every_shortlist, excluded, wanted, row_reranking
        )
    else:
        fills = vote_for_users(fallback, every_shortlist, excluded, wanted, row_reranking)
        fill_leads = [() for _ in fills]
    for row, fill, fill_lead in zip(rows, fills, fill_leads, strict=True):
        fill = fill[: count - len(votes[row])]
        if not fill:
            continue
        own_leads, fill_leads_of_row = lead_clusters[row], fill_lead[: len(fill)]
        leads_align = (
            with_leads and len(own_leads) == len(votes[row]) and len(fill_leads_of_row) == len(fill)
        )
        if not leads_align:
            own_leads, fill_leads_of_row = (None,) * len(votes[row]), (None,) * len(fill)
        own = list(zip(votes[row], own_leads, strict=True))
        filling = list(zip(fill, fill_leads_of_row, strict=True))
        # Both are best first; on a tie the user's own item stays ahead.
        merged = list(heapq.merge(own, filling, key=lambda pair: -pair[0].score))
        votes[row] = [item for item, _ in merged]
        if leads_align:
            lead_clusters[row] = tuple(lead for _, lead in merged)


__all__ = ["fill_short_lists"]
