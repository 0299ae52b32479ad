"""Decayed item popularity from the stream: a fresh new-user fallback and a candidate source.

An item's decayed popularity at time T is the sum over its events i of 2^(-(T - t_i) / h),
h the half-life in event time (``serving.popularity_half_life_hours``). Forward decay
(Cormode et al., "Forward Decay", ICDE 2009) factors out 2^(-T / h), which is the same for
every item: the items rank by the sum of 2^(t_i / h) alone, and a stored value never needs
rewriting as time passes. To keep those numbers finite each item stores the log2 of the
sum, and sums are combined by a log-sum-exp (``log2_sum``). That is commutative and
associative, so batches can be added in any grouping and order (concurrent consumers), and
the top N is an index scan over one column.

An event counts when the interaction rule stores its row (a redelivered event counts
nothing), at its own timestamp, whatever its weight: the ``popularity, decayed`` baseline
counts events alike (``streamrec.evaluation.streaming_baselines``), with its half-life in
events instead of event time.

>>> from streamrec.state import Interaction
>>> rows = [Interaction(f"u{n}", item, 1.0, f"e{n}", "like", time)
...         for n, (item, time) in enumerate([("a", 0.0), ("a", 0.0), ("b", 3600.0)])]
>>> increments = popularity_increments(rows, half_life_seconds=3600.0)
>>> list(zip(increments.item_ids, increments.log_scores))  # a: log2(1 + 1), b: log2(2^1)
[('a', 1.0), ('b', 1.0)]
>>> [(item.item_id, item.score) for item in
...  popular_candidates([("b", 3.0), ("a", 1.0), ("c", 0.0)], seen={"a"}, count=2)]
[('b', 1.0), ('c', 0.125)]
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from streamrec.events import RecommendedItem
from streamrec.state import Interaction

SECONDS_PER_HOUR = 3600.0
# A vote reads the most popular items once for all its users, this many beyond the list
# length for the users' own items, which are excluded afterwards. A user who has more of
# the top items than that gets a shorter popular list: the cost of a read stays bounded.
MOST_SEEN_ALLOWANCE = 1000
_LN2 = math.log(2.0)


def log2_sum(first: float, second: float) -> float:
    """log2(2^first + 2^second), without overflow. The database computes the same
    expression (``storage.repositories.popularity``): larger + ln(1 + e^((smaller - larger)
    ln 2)) / ln 2.

    >>> log2_sum(3.0, 3.0), log2_sum(1000.0, 0.0) == 1000.0
    (4.0, True)
    """
    larger, smaller = (first, second) if first >= second else (second, first)
    return larger + math.log(1.0 + math.exp((smaller - larger) * _LN2)) / _LN2


@dataclass(slots=True)
class PopularityIncrements:
    """A batch's popularity, per item sorted by id: log2 of the sum of 2^(t / h) over the
    batch's events of that item."""

    item_ids: list[str] = field(default_factory=list)
    log_scores: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.item_ids)

    def rows(self) -> Iterable[tuple[str, float]]:
        return zip(self.item_ids, self.log_scores, strict=True)


def popularity_increments(
    rows: Iterable[Interaction], half_life_seconds: float
) -> PopularityIncrements:
    """The popularity that the stored ``rows`` add, summed per item first, so a batch
    writes one value per item."""
    summed: dict[str, float] = {}
    for row in rows:
        exponent = row.timestamp / half_life_seconds
        before = summed.get(row.item_id)
        summed[row.item_id] = exponent if before is None else log2_sum(before, exponent)
    increments = PopularityIncrements()
    for item_id in sorted(summed):
        increments.item_ids.append(item_id)
        increments.log_scores.append(summed[item_id])
    return increments


def popular_read_size(count: int, seen: Iterable[Collection[str]]) -> int:
    """How many of the most popular items one read needs for users with ``seen`` items to
    get ``count`` each (bounded by MOST_SEEN_ALLOWANCE).

    >>> popular_read_size(20, [{"a"}, {"a", "b", "c"}]), popular_read_size(20, [])
    (23, 20)
    """
    return count + min(max((len(items) for items in seen), default=0), MOST_SEEN_ALLOWANCE)


def popular_candidates(
    popular: Sequence[tuple[str, float]], seen: Collection[str], count: int
) -> list[RecommendedItem]:
    """The ``count`` first of ``popular`` (item ids with their log2 scores, most popular
    first) that are not in ``seen``, each scored by its popularity relative to the most
    popular item's, 2^(log score - top log score), in (0, 1]."""
    if not popular:
        return []
    top = popular[0][1]
    chosen = []
    for item_id, log_score in popular:
        if len(chosen) >= count:
            break
        if item_id not in seen:
            chosen.append(RecommendedItem(item_id, 2.0 ** (log_score - top)))
    return chosen


__all__ = [
    "MOST_SEEN_ALLOWANCE",
    "SECONDS_PER_HOUR",
    "PopularityIncrements",
    "log2_sum",
    "popular_candidates",
    "popular_read_size",
    "popularity_increments",
]
