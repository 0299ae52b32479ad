"""Top-k ranking metrics for one user, and catalogue coverage over all users.

Relevance is binary. Precision divides by k even when fewer than k items were recommended,
recall by the number of relevant items, and NDCG's ideal ranking puts min(relevant, k) hits
first.

>>> recommended = ["a", "b", "c", "d"]
>>> precision_at(recommended, {"b", "d", "x"}, 4), recall_at(recommended, {"b", "d", "x"}, 4)
(0.5, 0.6666666666666666)
>>> round(ndcg_at(recommended, {"a"}, 4), 3), hit_rate_at(recommended, {"d"}, 3)
(1.0, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence


def hits(recommended: Sequence[str], relevant: Collection[str], k: int) -> list[bool]:
    """Whether each of the first k recommended items is relevant."""
    return [item in relevant for item in recommended[:k]]


def precision_at(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    return sum(hits(recommended, relevant, k)) / k


def recall_at(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(hits(recommended, relevant, k)) / len(relevant)


def hit_rate_at(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    return 1.0 if any(hits(recommended, relevant, k)) else 0.0


def ndcg_at(recommended: Sequence[str], relevant: Collection[str], k: int) -> float:
    ideal_hits = min(len(relevant), k)
    if ideal_hits == 0:
        return 0.0
    gain = sum(
        1.0 / math.log2(position + 2)
        for position, hit in enumerate(hits(recommended, relevant, k))
        if hit
    )
    ideal = sum(1.0 / math.log2(position + 2) for position in range(ideal_hits))
    return gain / ideal


def liked_share_of_rated(
    recommended: Sequence[str], rated: Collection[str], liked: Collection[str], k: int
) -> float | None:
    """The paper's "precision": among the top-k items the user rated in the test data, the
    share they liked. None when no recommended item was rated (the paper skips those)."""
    rated_hits = [item for item in recommended[:k] if item in rated]
    if not rated_hits:
        return None
    return sum(item in liked for item in rated_hits) / len(rated_hits)


def catalogue_coverage(
    recommendations: Iterable[Sequence[str]], catalogue: Collection[str]
) -> float:
    """Share of the catalogue recommended to at least one user."""
    if not catalogue:
        return 0.0
    recommended = {item for items in recommendations for item in items}
    return len(recommended.intersection(catalogue)) / len(catalogue)
