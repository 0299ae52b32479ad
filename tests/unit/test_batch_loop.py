"""The transactional batch loop sends what its handler returns, as data, and knows nothing of
what it means; the ingest service builds those messages: recommendations, dead letters with
their headers-only fallback, and drift commands. The loop runs over stand-in Kafka clients
here (the integration tests run it against the real broker)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers import TransactionalBatchLoop
from streamrec.config import Settings
from streamrec.drift import DriftSignal
from streamrec.events import InteractionEvent
from streamrec.offsets import OffsetReset, OffsetResetChoice, OutOfRange, StoredOffsets
from streamrec.services.batch import SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.services.outbound import (
    OutboundMessage,
    drift_train_command,
    train_command_message,
)
from streamrec.storage.memory import create_memory_database
from streamrec.storage.records import TrainingTrigger
from streamrec.wire import encode_interaction
from streamrec.wire.control import TrainCommand, parse_control
from streamrec.wire.recommendations import decode_recommendation
from tests.fixtures.small_model import register_model, small_model_settings

TOPIC = "orders"


@dataclass(frozen=True)
class PolledRecord:
    """The fields of a kafka-python ConsumerRecord that the loop reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 1_000


class OneBatchKafkaConsumer:
    """Assigns partition 0 of ``TOPIC`` at the first poll and delivers ``records`` at the
    next; every later poll is empty."""

    def __init__(self, records: Sequence[PolledRecord], journal: list[str]) -> None:
        self._records = list(records)
        self._journal = journal
        self._listener: ConsumerRebalanceListener | None = None
        self._assigned: set[TopicPartition] = set()

    def subscribe(self, topics: Iterable[str], listener: ConsumerRebalanceListener) -> None:
        self._journal.append(f"subscribe {sorted(topics)}")
        self._listener = listener

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        partition = TopicPartition(TOPIC, 0)
        if not self._assigned and self._listener is not None:
            self._assigned = {partition}
            self._listener.on_partitions_assigned(self._assigned)
            return {}
        records, self._records = self._records, []
        return {partition: records} if records else {}

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self._journal.append("seek to beginning")

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._journal.append(f"seek {offset}")

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        committed = sorted((partition.partition, at.offset) for partition, at in offsets.items())
        self._journal.append(f"commit {committed}")

    def close(self, autocommit: bool = True) -> None:
        self._journal.append("close")


class Acknowledged:
    def get(self, timeout: float | None = None) -> None:
        return None


@dataclass
class RecordingProducer:
    journal: list[str]

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Acknowledged:
        self.journal.append(f"send {topic} {key!r} {value!r}")
        return Acknowledged()

    def flush(self, timeout: float | None = None) -> None:
        self.journal.append("flush")


@dataclass
class Shipped:
    """A handler's result: what to send, and the next offsets."""

    outbound: list[OutboundMessage]
    next_offsets: dict[tuple[str, int], int]


@dataclass
class EchoHandler:
    """Turns each record into one message on the ``echo`` topic; keeps no state."""

    journal: list[str]
    acknowledged: list[dict[tuple[str, int], int]] = field(default_factory=list)

    def apply(self, records: Sequence[SourceRecord]) -> Shipped:
        self.journal.append(f"apply {[record.offset for record in records]}")
        return Shipped(
            [OutboundMessage("echo", record.key, record.value or b"") for record in records],
            {(TOPIC, 0): records[-1].offset + 1},
        )

    def stored_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], StoredOffsets]:
        return {}

    def reset_offsets(
        self, outside: Sequence[OutOfRange], choice: OffsetResetChoice
    ) -> list[OffsetReset]:
        raise AssertionError("no stored offset, so none outside the log")

    def acknowledge(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        self.journal.append(f"acknowledge {dict(next_offsets)}")


def test_the_loop_sends_what_the_handler_returns_then_acknowledges_and_commits() -> None:
    journal: list[str] = []
    records = [PolledRecord(TOPIC, 0, offset, b"k", f"v{offset}".encode()) for offset in (0, 1)]
    loop = TransactionalBatchLoop(
        Settings(),
        [TOPIC],
        EchoHandler(journal),
        OneBatchKafkaConsumer(records, journal),  # type: ignore[arg-type]
        RecordingProducer(journal),  # type: ignore[arg-type]
    )

    summary = loop.run(max_records=2)

    assert (summary.batches, summary.records, summary.stopped_because) == (1, 2, "max_records")
    assert journal == [
        f"subscribe {[TOPIC]}",
        "seek to beginning",
        "apply [0, 1]",
        "send echo b'k' b'v0'",
        "send echo b'k' b'v1'",
        "flush",
        f"acknowledge { ({(TOPIC, 0): 2}) }",
        "commit [(0, 2)]",
        "close",
    ]


def interaction(number: int, user_id: str) -> SourceRecord:
    event = InteractionEvent(f"e{number}", user_id, f"i{number % 3}", "like", 10.0 + number)
    return SourceRecord("interactions", 0, number, user_id.encode(), encode_interaction(event))


def test_the_service_builds_the_recommendations_and_dead_letters_it_publishes() -> None:
    settings = small_model_settings()
    engine = create_memory_database()
    register_model(engine, settings)
    records = [
        interaction(0, "u1"),
        SourceRecord("interactions", 0, 1, b"u9", b"{oops"),
        interaction(2, "u2"),
    ]

    result = IngestService(settings, engine).apply(records)

    topics = settings.topics
    assert [(message.topic, message.key) for message in result.outbound] == [
        (topics.recommendations, b"u1"),
        (topics.recommendations, b"u2"),
        (topics.dead_letters, b"u9"),
    ]
    recommendations = [decode_recommendation(message.value) for message in result.outbound[:2]]
    assert recommendations == result.recommendations
    letter = result.outbound[2]
    assert letter.value == b"{oops"
    assert dict(letter.headers)["reason"] == b"invalid_json"
    assert letter.fallback is not None
    fallback = letter.fallback.message
    assert (fallback.topic, fallback.key, fallback.value) == (topics.dead_letters, None, b"")
    assert dict(fallback.headers)["payload_truncated"] == b"true"


def test_a_drift_signal_becomes_a_train_command_on_the_control_topic() -> None:
    signal = DriftSignal(1_700_000_000.0, 500, hit_rate_before=0.4, hit_rate_after=0.1)
    command = drift_train_command(signal, now=1_700_000_000.0)
    message = train_command_message("control", command)

    assert (message.topic, message.key, message.fallback) == ("control", b"train", None)
    parsed = parse_control(message.value)
    assert isinstance(parsed, TrainCommand)
    assert parsed == command
    assert parsed.trigger is TrainingTrigger.DRIFT
    assert parsed.reason == signal.describe()
