"""Stored offsets against the log: the pure range check, and the consumer's positioning of
assigned partitions over a stand-in Kafka client (the local broker cannot delete records,
so the below-the-log-start case of retention is tested here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from kafka import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers import InteractionConsumer
from streamrec.config import Settings
from streamrec.offsets import (
    LogRange,
    OffsetResetChoice,
    StoredOffsets,
    StoredOffsetsOutsideLogError,
    find_outside_log,
    outside_log,
)
from streamrec.services.ingest import IngestService
from streamrec.storage import UnitOfWork
from streamrec.storage.memory import create_memory_database

SETTINGS = Settings()
INTERACTIONS = SETTINGS.topics.interactions
ITEMS = SETTINGS.topics.items


@pytest.mark.parametrize(
    ("stored", "log", "offending"),
    [
        (StoredOffsets(825, 825), LogRange(0, 1), 825),  # a recreated topic
        (StoredOffsets(2, 2), LogRange(0, 1), 2),
        (StoredOffsets(1, 1), LogRange(0, 1), None),  # read to the end
        (StoredOffsets(0, 0), LogRange(0, 0), None),  # an empty log, nothing read
        (StoredOffsets(40, 40), LogRange(100, 300), 40),  # retention deleted 40..99
        (StoredOffsets(100, 100), LogRange(100, 300), None),
        (StoredOffsets(150, 90), LogRange(100, 300), 90),  # resumes below the start
        (StoredOffsets(320, 290), LogRange(100, 300), 320),  # applied past the end
    ],
)
def test_outside_log_names_the_offending_offset(
    stored: StoredOffsets, log: LogRange, offending: int | None
) -> None:
    assert outside_log(stored, log) == offending


def test_partitions_without_a_stored_offset_or_a_known_log_are_never_outside() -> None:
    stored = {(INTERACTIONS, 0): StoredOffsets(5, 5), (INTERACTIONS, 2): StoredOffsets(9, 9)}
    logs = {(INTERACTIONS, 0): LogRange(6, 10), (INTERACTIONS, 1): LogRange(0, 3)}
    [found] = find_outside_log(stored, logs)
    assert (found.partition, found.stored, found.log) == (0, 5, LogRange(6, 10))


class StandInKafkaConsumer:
    """What the loop calls on a kafka-python consumer: every partition of ``logs`` is assigned
    at the first poll, offsets are listed from ``logs``, and nothing is ever fetched."""

    def __init__(self, logs: Mapping[tuple[str, int], LogRange]) -> None:
        self.logs = dict(logs)
        self.listener: ConsumerRebalanceListener | None = None
        self.assigned: set[TopicPartition] = set()
        self.positions: dict[tuple[str, int], int | str] = {}
        self.committed: dict[tuple[str, int], int] = {}

    def subscribe(self, topics: Iterable[str], listener: ConsumerRebalanceListener) -> None:
        self.listener = listener

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if not self.assigned and self.listener is not None:
            self.assigned = {TopicPartition(*key) for key in self.logs}
            self.listener.on_partitions_assigned(self.assigned)
        return {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {p: self.logs[(p.topic, p.partition)].start for p in partitions}

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {p: self.logs[(p.topic, p.partition)].end for p in partitions}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.positions[(partition.topic, partition.partition)] = offset

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for partition in partitions:
            self.positions[(partition.topic, partition.partition)] = "beginning"

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        self.committed.update({(p.topic, p.partition): o.offset for p, o in offsets.items()})

    def close(self, autocommit: bool = True) -> None:
        pass


def _after_retention(engine: Any) -> StandInKafkaConsumer:
    """Partition 0 was read to 40, but retention moved its log start to 100; partition 1 is
    fine; the items partition has no stored offset."""
    with UnitOfWork(engine) as uow:
        uow.offsets.save("group", INTERACTIONS, {0: 40, 1: 7})
        uow.offsets.acknowledge("group", INTERACTIONS, {0: 40, 1: 7})
        uow.commit()
    return StandInKafkaConsumer(
        {
            (INTERACTIONS, 0): LogRange(100, 300),
            (INTERACTIONS, 1): LogRange(0, 9),
            (ITEMS, 0): LogRange(0, 4),
        }
    )


def _loop(
    engine: Any, kafka: StandInKafkaConsumer, choice: OffsetResetChoice | None
) -> InteractionConsumer:
    service = IngestService(SETTINGS, engine, consumer_group="group")
    client: Any = kafka
    no_producer: Any = None  # no batch is polled, so nothing is ever published
    return InteractionConsumer(SETTINGS, service, client, no_producer, offset_reset=choice)


def test_records_deleted_before_they_were_read_stop_the_consumer_unmoved() -> None:
    engine = create_memory_database()
    kafka = _after_retention(engine)
    with pytest.raises(StoredOffsetsOutsideLogError) as raised:
        _loop(engine, kafka, None).run(idle_exit_seconds=0)
    assert "\n" not in str(raised.value)
    assert f"{INTERACTIONS}[0]: stored offset 40, log 100..300" in str(raised.value)
    assert f"{INTERACTIONS}[1]" not in str(raised.value)
    assert kafka.positions == {}
    with UnitOfWork(engine) as uow:
        assert uow.offsets.get("group", INTERACTIONS) == {0: 40, 1: 7}
        assert uow.offsets.recent_resets("group") == []


@pytest.mark.parametrize(
    ("choice", "resumed_at"), [(OffsetResetChoice.EARLIEST, 100), (OffsetResetChoice.LATEST, 300)]
)
def test_the_operators_choice_moves_only_the_partition_outside_the_log(
    choice: OffsetResetChoice, resumed_at: int
) -> None:
    engine = create_memory_database()
    kafka = _after_retention(engine)
    _loop(engine, kafka, choice).run(idle_exit_seconds=0)
    assert kafka.positions == {
        (INTERACTIONS, 0): resumed_at,
        (INTERACTIONS, 1): 7,
        (ITEMS, 0): "beginning",
    }
    assert kafka.committed == {(INTERACTIONS, 0): resumed_at}
    with UnitOfWork(engine) as uow:
        assert uow.offsets.stored("group", INTERACTIONS) == {
            0: StoredOffsets(resumed_at, resumed_at),
            1: StoredOffsets(7, 7),
        }
        [reset] = uow.offsets.recent_resets("group")
    assert (reset.topic, reset.partition, reset.stored_offset, reset.log) == (
        INTERACTIONS,
        0,
        40,
        LogRange(100, 300),
    )
    assert (reset.choice, reset.new_offset) == (choice, resumed_at)
