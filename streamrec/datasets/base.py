"""What every dataset loader returns: a time-ordered interaction table, item features and
user attributes, independent of the file format it came from.

>>> import numpy as np
>>> table = InteractionTable.from_rows(
...     [("u1", "i1", 1.0, 0.0, 5.0), ("u2", "i1", -0.5, 1.0, None)])
>>> table.user_vocabulary, table.item_vocabulary, len(table)
(['u1', 'u2'], ['i1'], 2)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from streamrec.config import EventSettings
from streamrec.events import InteractionEvent, ItemEvent
from streamrec.model.interaction_table import InteractionTable
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
