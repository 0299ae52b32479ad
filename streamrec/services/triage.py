"""Sorting a polled batch into valid interactions, item updates and dead letters.

Validation never raises: every record ends up in exactly one of the three lists, and a
rejected one keeps its original bytes, the reason code, a one-line detail and where it came
from.

>>> from streamrec.config import Settings
>>> settings = Settings()
>>> batch = triage([SourceRecord("interactions", 0, 7, b"u1", b"not json")], settings,
...                received_at=100.0)
>>> letter = batch.dead_letters[0]
>>> letter.reason, letter.source_offset, letter.payload
('invalid_json', 7, b'not json')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streamrec.config import Settings
from streamrec.events import ItemEvent
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.preferences import preference_weight
from streamrec.services.batch import SourceRecord
from streamrec.services.dead_letters import dead_letter_of
from streamrec.storage.records import DeadLetter
from streamrec.validation import Rejection, parse_interaction, parse_item

# A record from a topic the consumer does not read; only a misconfiguration produces one.
UNEXPECTED_TOPIC = "unexpected_topic"


@dataclass(frozen=True, slots=True)
class AcceptedItem:
    record: SourceRecord
    item: ItemEvent


@dataclass(frozen=True, slots=True)
class AcceptedInteractionRecord:
    record: SourceRecord
    interaction: AcceptedInteraction


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    record: SourceRecord
    letter: DeadLetter


@dataclass(slots=True)
class TriagedBatch:
    """The batch's records by kind, each list in the order the broker delivered them."""

    interactions: list[AcceptedInteractionRecord] = field(default_factory=list)
    items: list[AcceptedItem] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [rejected.letter for rejected in self.rejected]


def triage(records: Sequence[SourceRecord], settings: Settings, received_at: float) -> TriagedBatch:
    """Validate each record against the event contract of its topic, its key included."""
    batch = TriagedBatch()
    topics = settings.topics
    kept_bytes = settings.events.max_dead_letter_payload_bytes
    for record in records:
        if record.topic == topics.interactions:
            parsed = parse_interaction(record.value, settings.events, key=record.key)
            if isinstance(parsed, Rejection):
                batch.rejected.append(
                    _rejected(record, parsed.reason, parsed.detail, received_at, kept_bytes)
                )
                continue
            source = record.source_event(parsed.timestamp)
            weight = preference_weight(parsed, settings.events)
            batch.interactions.append(
                AcceptedInteractionRecord(record, AcceptedInteraction(parsed, weight, source))
            )
        elif record.topic == topics.items:
            parsed_item = parse_item(record.value, settings.events, key=record.key)
            if isinstance(parsed_item, Rejection):
                batch.rejected.append(
                    _rejected(
                        record, parsed_item.reason, parsed_item.detail, received_at, kept_bytes
                    )
                )
                continue
            batch.items.append(AcceptedItem(record, parsed_item))
        else:
            expected = f"{topics.interactions!r} or {topics.items!r}"
            detail = f"topic: {record.topic!r} is not {expected}"
            batch.rejected.append(
                _rejected(record, UNEXPECTED_TOPIC, detail, received_at, kept_bytes)
            )
    return batch


def _rejected(
    record: SourceRecord, reason: str, detail: str, received_at: float, kept_bytes: int
) -> RejectedRecord:
    letter = dead_letter_of(
        record, reason, detail, received_at=received_at, max_payload_bytes=kept_bytes
    )
    return RejectedRecord(record, letter)
