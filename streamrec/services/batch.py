"""What one polled batch is made of, and what applying it produced.

These are plain values: the consumer process turns broker records into :class:`SourceRecord`
and sends the outbound messages a :class:`BatchResult` holds (``streamrec.services.outbound``),
so the service layer never sees Kafka.

>>> record = SourceRecord("interactions", partition=0, offset=41, key=b"u1", value=b"{}")
>>> record.source_event(timestamp=1.5).offset
41
>>> result = BatchResult()
>>> result.counters.records, result.next_offsets
(0, {})
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streamrec.drift import DriftSignal
from streamrec.events import RecommendationMessage, SourceEvent
from streamrec.storage.records import DeadLetter

if TYPE_CHECKING:
    # For the annotation only: the outbound module imports this one (through dead_letters).
    from streamrec.services.outbound import OutboundMessage

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One input message as the broker delivered it: where it came from and its raw bytes.

    ``broker_timestamp`` is the broker's or producer's time for the message (seconds since the
    epoch), kept for latency measurements; the event's own time is inside ``value``.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    broker_timestamp: float | None = None

    @property
    def topic_partition(self) -> TopicPartition:
        return (self.topic, self.partition)

    def source_event(self, timestamp: float) -> SourceEvent:
        return SourceEvent(self.topic, self.partition, self.offset, timestamp)


@dataclass(slots=True)
class BatchCounters:
    """How many records of a batch went which way (summed over batches for metrics)."""

    records: int = 0
    interactions_applied: int = 0
    # An exact duplicate of an event (same id, same content), or an event not newer than the
    # stored one for the same (user, item). A reused id with other content is a dead letter.
    interactions_ignored: int = 0
    items_upserted: int = 0
    # Records below the stored offsets: applied already, so state is not touched.
    records_already_applied: int = 0
    users_updated: int = 0
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def dead_letters(self) -> int:
        return sum(self.dead_letters_by_reason.values())

    def add(self, other: BatchCounters) -> None:
        """Accumulate ``other`` into these counters."""
        self.records += other.records
        self.interactions_applied += other.interactions_applied
        self.interactions_ignored += other.interactions_ignored
        self.items_upserted += other.items_upserted
        self.records_already_applied += other.records_already_applied
        self.users_updated += other.users_updated
        self.dead_letters_by_reason.update(other.dead_letters_by_reason)


@dataclass(slots=True)
class BatchResult:
    """The outputs of one applied batch, committed to the database and still to be published.

    ``recommendations`` holds one message per touched user; ``dead_letters`` every rejected
    record of the batch (including those stored already by a replayed batch: outputs are
    at-least-once); ``next_offsets`` the offset to commit per partition of the batch;
    ``drift_signals`` the falls of the prequential hit rate the batch revealed (each asks the
    trainer for an early run); ``prequential_hits`` the hit indicator of each applied event
    of a user the model knew, in stream order. ``outbound`` is what the consumer sends, in
    order, made of the above: the recommendations, the dead letters (each falling back to
    its headers alone), and a ``train`` command per drift signal; the other fields are
    there for observers (metrics, tests).
    """

    recommendations: list[RecommendationMessage] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    model_version: int | None = None
    drift_signals: list[DriftSignal] = field(default_factory=list)
    prequential_hits: list[bool] = field(default_factory=list)
    counters: BatchCounters = field(default_factory=BatchCounters)
    outbound: list[OutboundMessage] = field(default_factory=list)
