"""Event ids are unique whatever the content: an id seen before is a duplicate or a reuse.

The interactions table keeps only the latest event per (user, item), so it cannot tell
whether an event id was seen before under another (user, item). The ``processed_events``
table can: it remembers every accepted interaction event id, with the fingerprint of its
content, for ``events.deduplication_retention_days`` after the consumer received it (the
deduplication window). Against those ids and against the earlier records of its own batch,
each fresh interaction event of a batch is

* **new**: its id is recorded, and the (user, item) rule decides what it changes;
* an **exact duplicate** (the id seen with the same fingerprint, e.g. a producer's retry):
  left to the (user, item) rule, which ignores it, as an event equal to or older than the
  stored one;
* a **reused id** (the id seen with another fingerprint): dead-lettered as
  ``event_id_reused`` and never applied, neither its weight nor its demographics.

Within one batch the first record of an id, in stream order, is the one that counts, so the
verdicts do not depend on how the stream is cut into batches. Records below the stored
offsets were judged when they were applied and change nothing again; a reused id among them
is dead-lettered again for publishing only (outputs are at-least-once).

>>> from streamrec.events import InteractionEvent
>>> first = InteractionEvent("v-2-0", "u1", "i1", "click", timestamp=10.0)
>>> retry = InteractionEvent("v-2-0", "u1", "i1", "click", timestamp=10.0)
>>> reuse = InteractionEvent("v-2-0", "u1", "i2", "click", timestamp=10.0)
>>> [event_fingerprint(event) == event_fingerprint(first) for event in (retry, reuse)]
[True, False]
>>> window = DeduplicationWindow(retention_days=30.0)
>>> window.received_before(now=40 * 86_400.0) / 86_400, window.prune_due(now=0.0)
(10.0, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from streamrec.events import InteractionEvent, RejectionReason
from streamrec.services.batch import SourceRecord
from streamrec.services.dead_letters import dead_letter_of
from streamrec.services.triage import AcceptedInteractionRecord, RejectedRecord, TriagedBatch
from streamrec.storage.records import DeadLetter, ProcessedEvent

SECONDS_PER_DAY = 86_400.0
# One bounded delete per prune: a backlog (after the window was shortened, or a consumer was
# down) drains a few thousand rows per batch instead of stalling one batch for long.
PRUNE_LIMIT = 5_000
# A prune that found fewer rows than its limit left none behind: the next one can wait.
PRUNE_INTERVAL_SECONDS = 1.0
# Ids in a detail are cut here: a detail is one short line.
_DETAIL_ID_LENGTH = 64


def event_fingerprint(event: InteractionEvent) -> str:
    """The sha256 hex digest of the content that defines ``event``: the compact JSON array
    ``[user_id, item_id, type, timestamp, value, user_attributes]`` (attributes by sorted
    name, numbers as floats). The event id is the key, not content; the wire form is not
    content either, so an ISO-8601 timestamp and the same instant in epoch seconds agree.

    >>> event = InteractionEvent("e1", "u1", "i1", "rating", 1.0, 4, {"b": "2", "a": "1"})
    >>> canonical = b'["u1","i1","rating",1.0,4.0,{"a":"1","b":"2"}]'
    >>> event_fingerprint(event) == hashlib.sha256(canonical).hexdigest()
    True
    """
    return hashlib.sha256(orjson.dumps(_content(event), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _content(event: InteractionEvent) -> list[object]:
    return [
        event.user_id,
        event.item_id,
        event.type,
        float(event.timestamp),
        None if event.value is None else float(event.value),
        event.user_attributes,
    ]


@dataclass(frozen=True, slots=True)
class EventIdCheck:
    """A batch judged by its interaction event ids: ``batch`` without the reused ids, which
    are among its rejected records; ``reused`` those dead letters (stored only for fresh
    records); ``first_seen`` the fresh ids to record."""

    batch: TriagedBatch
    reused: list[DeadLetter]
    first_seen: list[ProcessedEvent]


def check_event_ids(
    batch: TriagedBatch,
    fresh: Callable[[SourceRecord], bool],
    stored: Mapping[str, ProcessedEvent],
    received_at: float,
    max_payload_bytes: int,
) -> EventIdCheck:
    """Judge the interactions of ``batch`` (in stream order) against the ``stored`` events
    of their ids and against each other; ``fresh`` tells the records not yet applied. A dead
    letter keeps at most ``max_payload_bytes`` of its payload (``dead_letter_of``).

    >>> from streamrec.events import SourceEvent
    >>> from streamrec.model.interaction_rule import AcceptedInteraction
    >>> def accepted(offset, item_id):
    ...     event = InteractionEvent("e1", "u1", item_id, "click", 10.0)
    ...     record = SourceRecord("interactions", 0, offset, b"u1", b"{}")
    ...     interaction = AcceptedInteraction(event, 0.5, record.source_event(10.0))
    ...     return AcceptedInteractionRecord(record, interaction)
    >>> batch = TriagedBatch([accepted(0, "i1"), accepted(1, "i1"), accepted(2, "i2")])
    >>> check = check_event_ids(batch, lambda record: True, {}, 99.0, max_payload_bytes=64)
    >>> [accepted.record.offset for accepted in check.batch.interactions]  # and a duplicate
    [0, 1]
    >>> [letter.reason for letter in check.batch.dead_letters]
    ['event_id_reused']
    >>> [(event.event_id, event.item_id) for event in check.first_seen]
    [('e1', 'i1')]
    """
    known = dict(stored)
    kept: list[AcceptedInteractionRecord] = []
    rejected: list[RejectedRecord] = []
    first_seen: list[ProcessedEvent] = []
    for accepted in batch.interactions:
        event = accepted.interaction.event
        fingerprint = event_fingerprint(event)
        is_fresh = fresh(accepted.record)
        # A record below the stored offsets was judged when it was applied: only the stored
        # ids can tell whether it was a reuse then.
        earlier = (known if is_fresh else stored).get(event.event_id)
        if earlier is None:
            kept.append(accepted)
            if is_fresh:
                seen = ProcessedEvent(
                    event.event_id, fingerprint, event.user_id, event.item_id, received_at
                )
                known[event.event_id] = seen
                first_seen.append(seen)
        elif earlier.fingerprint == fingerprint:
            kept.append(accepted)
        else:
            rejected.append(
                RejectedRecord(
                    accepted.record,
                    _reused(accepted.record, earlier, received_at, max_payload_bytes),
                )
            )
    return EventIdCheck(
        TriagedBatch(kept, batch.items, [*batch.rejected, *rejected]),
        [rejection.letter for rejection in rejected],
        first_seen,
    )


def _reused(
    record: SourceRecord, earlier: ProcessedEvent, received_at: float, max_payload_bytes: int
) -> DeadLetter:
    detail = (
        f"event_id: {_shown(earlier.event_id)} was first seen with other content, for user "
        f"{_shown(earlier.user_id)} and item {_shown(earlier.item_id)}"
    )
    return dead_letter_of(
        record,
        RejectionReason.EVENT_ID_REUSED,
        detail,
        received_at=received_at,
        max_payload_bytes=max_payload_bytes,
    )


def _shown(identifier: str) -> str:
    if len(identifier) > _DETAIL_ID_LENGTH:
        return repr(identifier[:_DETAIL_ID_LENGTH]) + "..."
    return repr(identifier)


class DeduplicationWindow:
    """How long event ids are remembered, and when this consumer prunes the older ones next.

    A consumer prunes inside a batch's transaction, at most ``PRUNE_LIMIT`` rows at a time:
    again at the next batch while a prune comes back full (a backlog), else after
    ``PRUNE_INTERVAL_SECONDS``. Each consumer prunes: their deletes skip each other's rows.
    """

    def __init__(self, retention_days: float) -> None:
        self._retention_seconds = retention_days * SECONDS_PER_DAY
        self._next_prune_at = float("-inf")

    def received_before(self, now: float) -> float:
        """Events received before this moment are outside the window."""
        return now - self._retention_seconds

    def prune_due(self, now: float) -> bool:
        return now >= self._next_prune_at

    def pruned(self, deleted: int, now: float) -> None:
        """Record a prune at ``now`` that deleted ``deleted`` rows. (Should its batch roll
        back, the next prune merely comes an interval later.)"""
        self._next_prune_at = now if deleted >= PRUNE_LIMIT else now + PRUNE_INTERVAL_SECONDS
