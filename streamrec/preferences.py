"""Preference weights: how an event becomes a weight w in [-1, 1].

An explicit rating maps linearly from the configured scale onto [-1, 1], so that the scale's
midpoint is 0 and its ends are -1 and +1. An implicit event takes its weight from the
configured table; an explicit ``value`` on an implicit event overrides the table.

>>> from streamrec.config import EventSettings
>>> settings = EventSettings()
>>> rating_weight(5.0, settings), rating_weight(2.75, settings), rating_weight(0.5, settings)
(1.0, 0.0, -1.0)
>>> implicit_weight("click", None, settings)
0.5
"""

from __future__ import annotations

from streamrec.config import EventSettings
from streamrec.events import InteractionEvent

RATING = "rating"


def rating_weight(rating: float, settings: EventSettings) -> float:
    """Map a rating on [rating_min, rating_max] linearly onto [-1, 1] (clipped)."""
    span = settings.rating_max - settings.rating_min
    weight = 2.0 * (rating - settings.rating_min) / span - 1.0
    return min(1.0, max(-1.0, weight))


def implicit_weight(event_type: str, value: float | None, settings: EventSettings) -> float:
    """The table's weight for ``event_type``, or ``value`` clipped to [-1, 1] when given."""
    if value is not None:
        return min(1.0, max(-1.0, value))
    return settings.implicit_weights[event_type]


def preference_weight(event: InteractionEvent, settings: EventSettings) -> float:
    """The weight w_uj that ``event`` sets for its (user, item) pair."""
    if event.type == RATING:
        if event.value is None:
            raise ValueError("a rating event needs a value")
        return rating_weight(event.value, settings)
    return implicit_weight(event.type, event.value, settings)


def known_event_types(settings: EventSettings) -> frozenset[str]:
    return frozenset({RATING, *settings.implicit_weights})
