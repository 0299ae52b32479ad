"""Weighted reciprocal rank fusion of two ranked lists (the cluster vote and the item
neighbours).

An item's fused score is weight / (FUSION_RANK_OFFSET + its rank among the neighbours)
plus (1 - weight) / (FUSION_RANK_OFFSET + its rank in the vote), ranks from 1, a list it is
absent from adding nothing. Ranks, not scores, are fused: the vote's re-ranked scores and
the neighbours' co-occurrence scores have unrelated scales, and an item both sources name
rises above the items only one of them names.

>>> from streamrec.events import RecommendedItem as Item
>>> voted = [Item("a", 3.0), Item("b", 2.0)]
>>> neighbours = [Item("c", 9.0), Item("b", 1.0)]
>>> [(item.item_id, position) for item, position in fuse(voted, neighbours, 0.5, count=3)]
[('b', 1), ('a', 0), ('c', None)]
>>> [item.item_id for item, _ in fuse(voted, [], 0.5, count=3)]  # no neighbours: the vote
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence

from streamrec.events import RecommendedItem

# The usual constant of reciprocal rank fusion (Cormack et al., 2009): large enough that
# the first few ranks of one list do not drown everything else.
FUSION_RANK_OFFSET = 60.0


def fuse(
    voted: Sequence[RecommendedItem],
    neighbours: Sequence[RecommendedItem],
    weight: float,
    count: int,
) -> list[tuple[RecommendedItem, int | None]]:
    """The ``count`` best items of the two lists by fused score (module text), each with
    its position in ``voted`` (None: named by the neighbours only). Without neighbours the
    vote is returned as it is, scores included; ties go to the smaller item id."""
    if not neighbours:
        return [(item, position) for position, item in enumerate(voted[:count])]
    fused: dict[str, float] = {}
    for rank, item in enumerate(neighbours, 1):
        fused[item.item_id] = weight / (FUSION_RANK_OFFSET + rank)
    for rank, item in enumerate(voted, 1):
        fused[item.item_id] = fused.get(item.item_id, 0.0) + (1.0 - weight) / (
            FUSION_RANK_OFFSET + rank
        )
    position_in_vote = {item.item_id: position for position, item in enumerate(voted)}
    ranked = sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))[:count]
    return [
        (RecommendedItem(item_id, score), position_in_vote.get(item_id))
        for item_id, score in ranked
    ]


__all__ = ["FUSION_RANK_OFFSET", "fuse"]
