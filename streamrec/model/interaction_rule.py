"""Which interaction events change the stored state: the idempotence and ordering rule.

For one (user, item) pair the event with the greatest ``(timestamp, event_id)`` wins. An event
applies only if its key is greater than the stored one's, so

* a repeated event (same event_id and timestamp) changes nothing, however often it arrives;
* an event older than the stored one (it arrived out of order) does not overwrite the newer
  weight;
* two events with the same timestamp are ordered by event_id, so every consumer agrees.

The result is independent of how the stream is cut into batches, which is what makes a replay
after a crash land in the same state.

>>> from streamrec.events import InteractionEvent, SourceEvent
>>> def accepted(event_id, timestamp, weight):
...     event = InteractionEvent(event_id, "u1", "i1", "click", timestamp)
...     return AcceptedInteraction(event, weight, SourceEvent("interactions", 0, 0, timestamp))
>>> resolution = resolve_interactions(
...     [accepted("e2", 20.0, 1.0), accepted("e1", 10.0, -1.0), accepted("e2", 20.0, 1.0)], {})
>>> [(row.event_id, row.weight) for row in resolution.rows_to_store]
[('e2', 1.0)]
>>> resolution.applied, resolution.ignored
(1, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streamrec.events import InteractionEvent, SourceEvent
from streamrec.state import Interaction

UserItem = tuple[str, str]


@dataclass(frozen=True, slots=True)
class AcceptedInteraction:
    """A valid interaction event of the batch, with its preference weight and its source."""

    event: InteractionEvent
    weight: float
    source: SourceEvent

    @property
    def user_item(self) -> UserItem:
        return (self.event.user_id, self.event.item_id)


@dataclass(frozen=True, slots=True)
class InteractionChange:
    """The stored weight of (user, item) goes from ``old_weight`` (None: a new item in the
    user's set) to ``new_weight`` over the batch."""

    user_id: str
    item_id: str
    old_weight: float | None
    new_weight: float


@dataclass(slots=True)
class InteractionResolution:
    """The batch's effect on the interactions: rows to store, weight changes, counts."""

    rows_to_store: list[Interaction] = field(default_factory=list)
    changes: list[InteractionChange] = field(default_factory=list)
    # The (user, item) of every applied event, in stream order: what the prequential hit
    # indicator is asked about.
    applied_pairs: list[tuple[str, str]] = field(default_factory=list)
    applied: int = 0
    ignored: int = 0


def ordering_key(timestamp: float, event_id: str) -> tuple[float, str]:
    """The key that decides which of two events on one (user, item) pair is the later."""
    return (timestamp, event_id)


def resolve_interactions(
    candidates: Sequence[AcceptedInteraction], stored: Mapping[UserItem, Interaction]
) -> InteractionResolution:
    """Apply ``candidates`` (in stream order) to the ``stored`` rows of their pairs.

    An event counts as applied if it was the latest of its pair when it arrived, even if a
    later event of the same batch then replaced it; the batch stores only the final row.
    """
    resolution = InteractionResolution()
    latest: dict[UserItem, Interaction] = {}
    for candidate in candidates:
        pair = candidate.user_item
        current = latest.get(pair) or stored.get(pair)
        event = candidate.event
        if current is not None and ordering_key(event.timestamp, event.event_id) <= ordering_key(
            current.timestamp, current.event_id
        ):
            resolution.ignored += 1
            continue
        resolution.applied += 1
        resolution.applied_pairs.append((event.user_id, event.item_id))
        latest[pair] = _interaction_from(event, candidate.weight)
    for pair, row in latest.items():
        resolution.rows_to_store.append(row)
        previous = stored.get(pair)
        old_weight = None if previous is None else previous.weight
        if old_weight != row.weight:
            resolution.changes.append(
                InteractionChange(row.user_id, row.item_id, old_weight, row.weight)
            )
    return resolution


def _interaction_from(event: InteractionEvent, weight: float) -> Interaction:
    return Interaction(
        user_id=event.user_id,
        item_id=event.item_id,
        weight=weight,
        event_id=event.event_id,
        event_type=event.type,
        timestamp=event.timestamp,
    )
