"""Weighted reciprocal rank fusion of ranked lists: the cluster vote with the other
candidate sources (the item neighbours, the decayed popularity).

An item's fused score is the sum over the lists it is in of the list's weight /
(FUSION_RANK_OFFSET + its rank in that list), ranks from 1, a list it is absent from adding
nothing. Ranks, not scores, are fused: the vote's re-ranked scores, the neighbours'
co-occurrence scores and the popularity have unrelated scales, and an item several sources
name rises above the items only one of them names. ``fuse`` is the vote with the
neighbours, at weights 1 - weight and weight; ``fuse_lists`` takes any further lists.

>>> from streamrec.events import RecommendedItem as Item
>>> voted = [Item("a", 3.0), Item("b", 2.0)]
>>> neighbours = [Item("c", 9.0), Item("b", 1.0)]
>>> [(item.item_id, position) for item, position in fuse(voted, neighbours, 0.5, count=3)]
[('b', 1), ('a', 0), ('c', None)]
>>> [item.item_id for item, _ in fuse(voted, [], 0.5, count=3)]  # no neighbours: the vote
['a', 'b']
>>> popular = RankedList([Item("d", 1.0), Item("a", 0.5)], 0.9)
>>> [item.item_id for item, _ in
...  fuse_lists(RankedList(voted, 0.5), [RankedList(neighbours, 0.5), popular], count=3)]
['a', 'b', 'd']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streamrec.events import RecommendedItem

# The usual constant of reciprocal rank fusion (Cormack et al., 2009): large enough that
# the first few ranks of one list do not drown everything else.
FUSION_RANK_OFFSET = 60.0


@dataclass(frozen=True, slots=True)
class RankedList:
    """One source's candidates, best first, and the weight of its ranks in the fusion."""

    items: Sequence[RecommendedItem]
    weight: float


def fuse(
    voted: Sequence[RecommendedItem],
    neighbours: Sequence[RecommendedItem],
    weight: float,
    count: int,
) -> list[tuple[RecommendedItem, int | None]]:
    """The ``count`` best items of the vote and the neighbours by fused score (module text),
    the neighbours at ``weight`` and the vote at 1 - ``weight``."""
    return fuse_lists(RankedList(voted, 1.0 - weight), [RankedList(neighbours, weight)], count)


def fuse_lists(
    voted: RankedList, others: Sequence[RankedList], count: int
) -> list[tuple[RecommendedItem, int | None]]:
    """The ``count`` best items of the vote and the ``others`` by fused score (module
    text), each with its position in the vote (None: named by the others only). When no
    other list names an item (or all weigh 0) the vote is returned as it is, scores
    included; ties go to the smaller item id."""
    others = [other for other in others if other.items and other.weight > 0.0]
    if not others:
        return [(item, position) for position, item in enumerate(voted.items[:count])]
    fused: dict[str, float] = {}
    # The vote is added last: with one other list every score is the sum of the same two
    # terms in the same order whatever the number of sources.
    for other in others:
        for rank, item in enumerate(other.items, 1):
            fused[item.item_id] = fused.get(item.item_id, 0.0) + other.weight / (
                FUSION_RANK_OFFSET + rank
            )
    for rank, item in enumerate(voted.items, 1):
        fused[item.item_id] = fused.get(item.item_id, 0.0) + voted.weight / (
            FUSION_RANK_OFFSET + rank
        )
    position_in_vote = {item.item_id: position for position, item in enumerate(voted.items)}
    ranked = sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))[:count]
    return [
        (RecommendedItem(item_id, score), position_in_vote.get(item_id))
        for item_id, score in ranked
    ]


__all__ = ["FUSION_RANK_OFFSET", "RankedList", "fuse", "fuse_lists"]
