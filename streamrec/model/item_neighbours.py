"""Short-term item neighbours: a second candidate source beside the cluster shortlists.

Two items are neighbours when users take them close together. The counts are kept
incrementally and cost a bounded amount per event:

- **Learning.** An item new to a user adds one co-occurrence with each of the user's
  previous ``history`` items (H), both ways, and one to its own popularity (the number of
  users who have it, kept as the pair (item, item)). So an event writes at most 2H + 1
  counts, whatever the catalogue or the number of users, and an item counts from its
  first event on. ``cooccurrence_increments`` sums a batch's counts per pair.
- **Recommending.** A user's candidates come from their ``history`` most recent items: each
  one's ``neighbour_count`` (k) most co-occurring items, scored
  sum over recent items r of recency(r) * count(r, j) / sqrt(popularity(j)), the user's own
  items excluded. recency is 1, or with a half-life in items 2^(-position / half-life)
  (position 0 is the newest item). The cost is O(H * k).
- **Explaining.** ``naming_recent_items`` says which recent items named a recommended item,
  each with its share of the item's score, recency(r) * count(r, j) over the sum of that
  over the recent items (1 / sqrt(popularity(j)) is the same for all of them).

A user's items are ordered by the interaction rule's key (time, then event id), so every
adapter of the state orders them alike.

>>> from streamrec.state import Interaction
>>> def row(user, item, time):
...     return Interaction(user, item, 1.0, f"{user}-{item}", "like", time)
>>> stored = {"u1": [row("u1", "a", 1.0), row("u1", "b", 2.0)]}
>>> increments = cooccurrence_increments(stored, [row("u1", "c", 3.0)], history=1)
>>> list(increments.rows())  # c with the newest earlier item only, and c's popularity
[('b', 'c', 1.0), ('c', 'b', 1.0), ('c', 'c', 1.0)]
>>> neighbours = {"b": [("c", 2.0), ("a", 1.0)], "a": [("c", 1.0)]}
>>> popularity = {"a": 4.0, "c": 1.0}
>>> [(item.item_id, item.score) for item in
...  neighbour_candidates(["b", "a"], neighbours, popularity, seen={"a", "b"}, count=5)]
[('c', 3.0)]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from streamrec.events import RecommendedItem
from streamrec.model.interaction_rule import ordering_key
from streamrec.state import Interaction

Neighbours = Mapping[str, Sequence[tuple[str, float]]]


def recent_items(interactions: Iterable[Interaction], count: int) -> list[str]:
    """The ``count`` items the user took last, newest first.

    >>> rows = [Interaction("u", item, 1.0, f"e{n}", "like", time)
    ...         for n, (item, time) in enumerate([("a", 5.0), ("b", 1.0), ("c", 5.0)])]
    >>> recent_items(rows, 2)  # equal times: the later event id is the newer
    ['c', 'a']
    """
    newest = heapq.nlargest(
        count, interactions, key=lambda row: ordering_key(row.timestamp, row.event_id)
    )
    return [row.item_id for row in newest]


@dataclass(slots=True)
class CooccurrenceIncrements:
    """A batch's co-occurrence counts, summed per (item, other item) pair and sorted by it.
    The pair (item, item) counts the users new to the item: its popularity."""

    item_ids: list[str] = field(default_factory=list)
    other_item_ids: list[str] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.item_ids)

    def rows(self) -> Iterable[tuple[str, str, float]]:
        return zip(self.item_ids, self.other_item_ids, self.counts, strict=True)


def cooccurrence_increments(
    stored: Mapping[str, Sequence[Interaction]],
    new_rows: Sequence[Interaction],
    history: int,
) -> CooccurrenceIncrements:
    """The counts that ``new_rows`` add: each is an item new to its user (not among
    ``stored[user]``), counted with the user's ``history`` items before it (their stored
    items and the batch's earlier ones, by the ordering key) and with itself. An item
    taken again counts nothing and becomes the user's newest.

    >>> def row(item, time):
    ...     return Interaction("u", item, 1.0, item, "like", time)
    >>> batch = cooccurrence_increments({}, [row("a", 1.0), row("b", 2.0), row("c", 3.0)], 2)
    >>> [(item, other) for item, other, _ in batch.rows() if item != other]
    [('a', 'b'), ('a', 'c'), ('b', 'a'), ('b', 'c'), ('c', 'a'), ('c', 'b')]
    >>> len(cooccurrence_increments({}, [row("a", 1.0)], 2))  # only its popularity
    1
    """
    summed: dict[tuple[str, str], float] = {}
    new_by_user: dict[str, list[Interaction]] = {}
    for row in new_rows:
        new_by_user.setdefault(row.user_id, []).append(row)
    for user_id, rows in new_by_user.items():
        earlier = stored.get(user_id, ())
        known = {row.item_id for row in earlier}
        # Oldest first: the last ``history`` of this list are the items before the next.
        taken = list(reversed(recent_items(earlier, history)))
        for row in sorted(rows, key=lambda row: ordering_key(row.timestamp, row.event_id)):
            if row.item_id in known:
                # Taken again: no new co-occurrence, but it is now the user's newest item.
                if row.item_id in taken:
                    taken.remove(row.item_id)
                taken.append(row.item_id)
                continue
            known.add(row.item_id)
            item_id = row.item_id
            summed[(item_id, item_id)] = summed.get((item_id, item_id), 0.0) + 1.0
            for other in taken[-history:] if history > 0 else ():
                summed[(item_id, other)] = summed.get((item_id, other), 0.0) + 1.0
                summed[(other, item_id)] = summed.get((other, item_id), 0.0) + 1.0
            taken.append(item_id)
    increments = CooccurrenceIncrements()
    for (item_id, other), count in sorted(summed.items()):
        increments.item_ids.append(item_id)
        increments.other_item_ids.append(other)
        increments.counts.append(count)
    return increments


def recency_weights(count: int, half_life: float | None) -> list[float]:
    """The weight of each of ``count`` recent items, newest first.

    >>> recency_weights(3, None), recency_weights(3, 1.0)
    ([1.0, 1.0, 1.0], [1.0, 0.5, 0.25])
    """
    if half_life is None:
        return [1.0] * count
    return [0.5 ** (position / half_life) for position in range(count)]


def neighbour_candidates(
    recent: Sequence[str],
    neighbours: Neighbours,
    popularity: Mapping[str, float],
    seen: Collection[str],
    count: int,
    half_life: float | None = None,
) -> list[RecommendedItem]:
    """The ``count`` best-scored neighbours of the ``recent`` items (newest first), none of
    ``seen``; ties by item id (module text)."""
    scores: dict[str, float] = {}
    for weight, item_id in zip(recency_weights(len(recent), half_life), recent, strict=True):
        for other, together in neighbours.get(item_id, ()):
            if other not in seen:
                scores[other] = scores.get(other, 0.0) + weight * together
    best = heapq.nsmallest(
        count,
        (
            (-score / math.sqrt(max(popularity.get(item_id, 1.0), 1.0)), item_id)
            for item_id, score in scores.items()
        ),
    )
    return [RecommendedItem(item_id, -negative) for negative, item_id in best]


def naming_recent_items(
    item_ids: Collection[str],
    recent: Sequence[str],
    neighbours: Neighbours,
    half_life: float | None = None,
) -> dict[str, tuple[tuple[str, float], ...]]:
    """For each of ``item_ids``, the ``recent`` items (newest first) that have it among
    their neighbours, each with its share of the item's neighbour score (module text),
    largest first, ties newest first; an item none of them names is absent.

    >>> neighbours = {"b": [("c", 2.0), ("a", 1.0)], "a": [("c", 1.0)]}
    >>> naming_recent_items({"c", "z"}, ["b", "a"], neighbours, half_life=1.0)
    {'c': (('b', 0.8), ('a', 0.2))}
    """
    parts: dict[str, list[tuple[str, float]]] = {}
    for weight, recent_id in zip(recency_weights(len(recent), half_life), recent, strict=True):
        for other, together in neighbours.get(recent_id, ()):
            if other in item_ids:
                parts.setdefault(other, []).append((recent_id, weight * together))
    named = {}
    for item_id, pairs in parts.items():
        total = sum(part for _, part in pairs)
        # sorted is stable: equal parts stay newest first.
        ordered = sorted(pairs, key=lambda pair: -pair[1])
        named[item_id] = tuple(
            (recent_id, part / total if total > 0.0 else 0.0) for recent_id, part in ordered
        )
    return named


__all__ = [
    "CooccurrenceIncrements",
    "Neighbours",
    "cooccurrence_increments",
    "naming_recent_items",
    "neighbour_candidates",
    "recency_weights",
    "recent_items",
]
