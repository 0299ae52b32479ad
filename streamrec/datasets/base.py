"""What every dataset loader returns: a time-ordered interaction table, item features and
user attributes, independent of the file format it came from.

>>> import numpy as np
>>> table = InteractionTable.from_rows(
...     [("u1", "i1", 1.0, 0.0, 5.0), ("u2", "i1", -0.5, 1.0, None)])
>>> table.user_vocabulary, table.item_vocabulary, len(table)
(['u1', 'u2'], ['i1'], 2)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from streamrec.config import EventSettings
from streamrec.events import InteractionEvent, ItemEvent
from streamrec.preferences import rating_weight


@dataclass(frozen=True)
class RatingScale:
    """A dataset's own explicit rating scale, which maps linearly onto weights in [-1, 1].

    >>> RatingScale(1.0, 5.0).weight(3.0), RatingScale(0.5, 5.0).weight(5.0)
    (0.0, 1.0)
    """

    minimum: float
    maximum: float

    def event_settings(self) -> EventSettings:
        """Event settings whose rating scale is this one (what a replay consumer must use)."""
        return EventSettings(rating_min=self.minimum, rating_max=self.maximum)

    def weight(self, rating: float) -> float:
        return rating_weight(rating, self.event_settings())

    def weights(self, ratings: np.ndarray) -> np.ndarray:
        """Weights of many ratings; each distinct rating value is mapped once."""
        settings = self.event_settings()
        distinct, positions = np.unique(np.asarray(ratings, dtype=np.float64), return_inverse=True)
        mapped = np.array([rating_weight(float(value), settings) for value in distinct])
        return mapped[positions].astype(np.float32).reshape(np.shape(ratings))


@dataclass(frozen=True)
class InteractionTable:
    """Columnar interactions, one row per event, for batch training and offline evaluation.

    users[k] and items[k] index into user_vocabulary and item_vocabulary (the external ids).
    weights are preference weights in [-1, 1]; ratings hold the raw explicit value, or NaN
    for implicit events. Rows are sorted by timestamp (ties keep file order).
    """

    users: np.ndarray  # int32 index into user_vocabulary
    items: np.ndarray  # int32 index into item_vocabulary
    weights: np.ndarray  # float32 in [-1, 1]
    timestamps: np.ndarray  # float64 epoch seconds
    ratings: np.ndarray  # float32, NaN for implicit events
    user_vocabulary: list[str]
    item_vocabulary: list[str]

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[str, str, float, float, float | None]]
    ) -> InteractionTable:
        """Build from (user_id, item_id, weight, timestamp, rating or None) rows."""
        user_index: dict[str, int] = {}
        item_index: dict[str, int] = {}
        users, items, weights, timestamps, ratings = [], [], [], [], []
        for user_id, item_id, weight, timestamp, rating in rows:
            users.append(user_index.setdefault(user_id, len(user_index)))
            items.append(item_index.setdefault(item_id, len(item_index)))
            weights.append(weight)
            timestamps.append(timestamp)
            ratings.append(np.nan if rating is None else rating)
        order = np.argsort(np.asarray(timestamps, dtype=np.float64), kind="stable")
        return cls(
            users=np.asarray(users, dtype=np.int32)[order],
            items=np.asarray(items, dtype=np.int32)[order],
            weights=np.asarray(weights, dtype=np.float32)[order],
            timestamps=np.asarray(timestamps, dtype=np.float64)[order],
            ratings=np.asarray(ratings, dtype=np.float32)[order],
            user_vocabulary=list(user_index),
            item_vocabulary=list(item_index),
        )

    def subset(self, rows: np.ndarray) -> InteractionTable:
        """The rows selected by a boolean mask or index array, vocabularies unchanged."""
        return InteractionTable(
            users=self.users[rows],
            items=self.items[rows],
            weights=self.weights[rows],
            timestamps=self.timestamps[rows],
            ratings=self.ratings[rows],
            user_vocabulary=self.user_vocabulary,
            item_vocabulary=self.item_vocabulary,
        )


@dataclass
class Dataset:
    """A loaded dataset: interactions, item features (with titles) and user demographics."""

    name: str
    table: InteractionTable
    items: Mapping[str, ItemEvent] = field(default_factory=dict)
    user_attributes: Mapping[str, dict[str, str]] = field(default_factory=dict)
    event_type: str = "rating"  # the type of every event when the format has only one
    # The scale ratings were mapped from; a replay must configure its events with it.
    rating_scale: RatingScale | None = None

    def events(self) -> Iterator[InteractionEvent]:
        """The interactions as wire-level events in time order (for replay into Kafka)."""
        table = self.table
        for row in range(len(table)):
            user_id = table.user_vocabulary[table.users[row]]
            item_id = table.item_vocabulary[table.items[row]]
            rating = float(table.ratings[row])
            yield InteractionEvent(
                event_id=f"{self.name}:{row}",
                user_id=user_id,
                item_id=item_id,
                type=self.event_type,
                value=None if np.isnan(rating) else rating,
                timestamp=float(table.timestamps[row]),
                user_attributes=dict(self.user_attributes.get(user_id, {})),
            )
