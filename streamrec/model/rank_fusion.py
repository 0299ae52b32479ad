"""Weighted reciprocal rank fusion of ranked lists: the cluster vote with the other
candidate sources (the item neighbours, the decayed popularity).

An item's fused score is the sum over the lists it is in of the list's weight /
(FUSION_RANK_OFFSET + its rank in that list), ranks from 1, a list it is absent from adding
nothing. Ranks, not scores, are fused: the vote's re-ranked scores, the neighbours'
co-occurrence scores and the popularity have unrelated scales, and an item several sources
name rises above the items only one of them names. So a fused score lies in
(0, W / (FUSION_RANK_OFFSET + 1)], W the sum of the fused lists' weights, the upper end
reached by an item first in every list. ``fuse`` is the vote with the neighbours, at
weights 1 - weight and weight; ``fuse_lists`` takes any further lists.

Each fused item also says which lists put it there: its rank in each list and each list's
**share** of its fused score, weight / (FUSION_RANK_OFFSET + rank) over the score, in
[0, 1] and summing to 1 over the lists (``FusedItem``). Without fusion the vote is the
list, and its share is 1.

>>> from streamrec.events import RecommendedItem as Item
>>> voted = [Item("a", 3.0), Item("b", 2.0)]
>>> neighbours = [Item("c", 9.0), Item("b", 1.0)]
>>> [(fused.item.item_id, fused.position) for fused in fuse(voted, neighbours, 0.5, count=3)]
[('b', 1), ('a', 0), ('c', None)]
>>> [fused.item.item_id for fused in fuse(voted, [], 0.5, count=3)]  # no neighbours: the vote
['a', 'b']
>>> popular = RankedList([Item("d", 1.0), Item("a", 0.5)], 0.9, Source.POPULARITY)
>>> fused = fuse_lists(RankedList(voted, 0.5), [RankedList(neighbours, 0.5), popular], 3)
>>> [(item.item_id, ranks) for item, ranks, _ in fused]
[('a', (1, None, 2)), ('b', (2, 2, None)), ('d', (None, None, 1))]
>>> [round(share, 3) for share in fused[0].shares], fused[0].lead  # popularity leads "a"
([0.361, 0.0, 0.639], 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from streamrec.events import RecommendedItem

# The usual constant of reciprocal rank fusion (Cormack et al., 2009): large enough that
# the first few ranks of one list do not drown everything else.
FUSION_RANK_OFFSET = 60.0


class Source(StrEnum):
    """Where a candidate list comes from: what an explanation and a published message name."""

    CLUSTERS = "clusters"  # the vote of the user's clusters (model.voting)
    NEIGHBOURS = "neighbours"  # the item neighbours of the user's recent items
    POPULARITY = "popularity"  # the decayed popularity


@dataclass(frozen=True, slots=True)
class RankedList:
    """One source's candidates, best first, and the weight of its ranks in the fusion."""

    items: Sequence[RecommendedItem]
    weight: float
    source: Source = Source.CLUSTERS


class FusedItem(NamedTuple):
    """One item of a fused list (its fused score), with per list, the vote first and then
    the others as given: its rank there (from 1; None where absent) and that list's share
    of the fused score (0 where absent)."""

    item: RecommendedItem
    ranks: tuple[int | None, ...]
    shares: tuple[float, ...]

    @property
    def position(self) -> int | None:
        """Its position in the vote (from 0), None when only the other lists named it."""
        rank = self.ranks[0]
        return None if rank is None else rank - 1

    @property
    def lead(self) -> int:
        """The index of the list with the largest share (the first of equal ones)."""
        shares = self.shares
        return max(range(len(shares)), key=shares.__getitem__)


def fuse(
    voted: Sequence[RecommendedItem],
    neighbours: Sequence[RecommendedItem],
    weight: float,
    count: int,
) -> list[FusedItem]:
    """The ``count`` best items of the vote and the neighbours by fused score (module text),
    the neighbours at ``weight`` and the vote at 1 - ``weight``."""
    return fuse_lists(
        RankedList(voted, 1.0 - weight),
        [RankedList(neighbours, weight, Source.NEIGHBOURS)],
        count,
    )


def fuse_lists(voted: RankedList, others: Sequence[RankedList], count: int) -> list[FusedItem]:
    """The ``count`` best items of the vote and the ``others`` by fused score (module
    text). When no other list names an item (or all weigh 0) the vote is returned as it
    is, scores included, each item's share the vote's; ties go to the smaller item id."""
    absent = (None,) * len(others)
    used = [other for other in others if _takes_part(other)]
    if not used:
        alone = (1.0,) + (0.0,) * len(others)
        return [
            FusedItem(item, (rank, *absent), alone)
            for rank, item in enumerate(voted.items[:count], 1)
        ]
    fused: dict[str, float] = {}
    # The vote is added last: with one other list every score is the sum of the same two
    # terms in the same order whatever the number of sources.
    for other in used:
        for rank, item in enumerate(other.items, 1):
            fused[item.item_id] = fused.get(item.item_id, 0.0) + other.weight / (
                FUSION_RANK_OFFSET + rank
            )
    for rank, item in enumerate(voted.items, 1):
        fused[item.item_id] = fused.get(item.item_id, 0.0) + voted.weight / (
            FUSION_RANK_OFFSET + rank
        )
    lists = [voted, *others]
    used_ids = {id(other) for other in used}
    rank_in = [
        {item.item_id: rank for rank, item in enumerate(ranked.items, 1)}
        if ranked is voted or id(ranked) in used_ids
        else {}
        for ranked in lists
    ]
    ranked = sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))[:count]
    entries = []
    for item_id, score in ranked:
        ranks = tuple(ranks_of.get(item_id) for ranks_of in rank_in)
        entries.append(FusedItem(RecommendedItem(item_id, score), ranks, _shares(ranks, lists)))
    return entries


def fuses(others: Sequence[RankedList]) -> bool:
    """Whether ``fuse_lists`` fuses the vote with ``others`` (scores by rank), or returns
    the vote as it is: some other list names an item at a positive weight."""
    return any(map(_takes_part, others))


def _takes_part(ranked: RankedList) -> bool:
    return bool(ranked.items) and ranked.weight > 0.0


def _shares(ranks: Sequence[int | None], lists: Sequence[RankedList]) -> tuple[float, ...]:
    """Each list's share of the fused score of an item with these ``ranks``; lists that all
    weigh 0 (a vote at weight 0 filling the list) share it equally.

    >>> lists = [RankedList([], 0.0), RankedList([], 1.0)]
    >>> _shares((3, None), lists), _shares((1, 1), lists)
    ((1.0, 0.0), (0.0, 1.0))
    """
    parts = [
        0.0 if rank is None else ranked.weight / (FUSION_RANK_OFFSET + rank)
        for rank, ranked in zip(ranks, lists, strict=True)
    ]
    total = sum(parts)
    if total > 0.0:
        return tuple(part / total for part in parts)
    named = sum(rank is not None for rank in ranks)
    return tuple(0.0 if rank is None else 1.0 / named for rank in ranks)


__all__ = [
    "FUSION_RANK_OFFSET",
    "FusedItem",
    "RankedList",
    "Source",
    "fuse",
    "fuse_lists",
    "fuses",
]
