"""Which event's demographics win: per attribute, the newest event that names it.

Events may carry some of a user's attributes (``user_attributes``), and they may arrive out of
order or twice. For each attribute name the value of the event with the greatest
``(timestamp, event_id)`` wins, the same order as the interaction rule
(``streamrec.model.interaction_rule``); attributes an event does not name keep their value. The
result does not depend on the order of delivery or on how the stream is cut into batches.
The key of each attribute's winning event is stored beside the attributes; attributes stored
without one (before migration 0006, or by a rebuild) yield to any event.

>>> from streamrec.events import InteractionEvent
>>> newer = InteractionEvent("e2", "u1", "i1", "click", 20.0, user_attributes={"country": "de"})
>>> older = InteractionEvent("e1", "u1", "i2", "click", 10.0,
...                          user_attributes={"country": "fr", "age": "18-24"})
>>> merged = merge_attributes({}, {}, [newer, older])
>>> merged.attributes
{'country': 'de', 'age': '18-24'}
>>> merged.event_keys["country"]
(20.0, 'e2')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streamrec.events import InteractionEvent

EventKey = tuple[float, str]


@dataclass(frozen=True, slots=True)
class MergedAttributes:
    """A user's attributes after the events, with the key of each attribute's winning event."""

    attributes: dict[str, str]
    event_keys: dict[str, EventKey]


def merge_attributes(
    stored: Mapping[str, str],
    stored_event_keys: Mapping[str, EventKey],
    events: Iterable[InteractionEvent],
) -> MergedAttributes:
    """Merge the attributes ``events`` carry over ``stored`` (one user's), newest per name."""
    attributes = dict(stored)
    event_keys = dict(stored_event_keys)
    for event in events:
        key = (event.timestamp, event.event_id)
        for name, value in event.user_attributes.items():
            # An attribute stored without a key yields to any event.
            if name not in event_keys or key >= event_keys[name]:
                attributes[name] = value
                event_keys[name] = key
    return MergedAttributes(attributes, event_keys)
