"""What a recommender may know of one user it is asked about: their history, not an id.

>>> history = UserHistory("u1", [("i1", 1.0), ("i2", -0.5)], timestamps=[10.0, 20.0])
>>> [item for item, weight in history.interactions if weight > 0]
['i1']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UserHistory:
    """What a recommender may know of one evaluated user: their (item_id, weight) history in
    time order, their demographics if the dataset has any, and the time of each interaction
    (epoch seconds, one per interaction; None where the source does not give them)."""

    user_id: str
    interactions: Sequence[tuple[str, float]]
    attributes: Mapping[str, str] = field(default_factory=dict)
    timestamps: Sequence[float] | None = None
