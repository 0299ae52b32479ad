"""Chaos at the door, end to end: a hostile stream (tests/fixtures/hostile_events.py) through
the real broker into the consumer and PostgreSQL. Every valid event is applied exactly once
(the state is a clean run's over the valid events alone) and every broken record reaches the
dead-letter topic and table once, with the reason the contract gives it.

The unit tests run many such streams through the ingest service on SQLite; these few examples
add what only the real parts do: Kafka's partitioning, tombstones, record and key sizes, the
dead-letter messages' headers, and PostgreSQL's storage of every odd id."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.kafka import create_producer
from streamrec.model.efficientrec import EfficientRec
from streamrec.services.batch import SourceRecord
from streamrec.services.dead_letters import MAX_DEAD_LETTER_KEY_BYTES
from streamrec.services.ingest import IngestService
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage import UnitOfWork
from streamrec.storage.memory import create_memory_database
from streamrec.storage.tables import Base
from tests.fixtures.hostile_events import StreamRecord, hostile_streams
from tests.fixtures.snapshots import StateSnapshot, differences, take_snapshot
from tests.integration.chaos_support import published_users
from tests.integration.pipeline_support import (
    consume_in_process,
    database_snapshot,
    fresh_topics,
    on_postgresql,
    pipeline_settings,
    read_topic,
    register_model,
)

Position = tuple[int, int]  # (partition, offset)


@on_postgresql
@settings(
    max_examples=2,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(stream=hostile_streams())
def test_a_hostile_stream_through_the_broker_applies_each_valid_event_once(
    kafka_settings: Settings, database_url: str, engine: Engine, stream: list[StreamRecord]
) -> None:
    # Each example on topics and a database of its own.
    config = fresh_topics(pipeline_settings(kafka_settings, database_url))
    _delete_all_rows(engine)
    model = register_model(engine, config)
    positions = _produce(config, stream)
    broken = {position: record for position, record in positions.items() if not record.valid}

    summary = consume_in_process(config, engine, idle_exit_seconds=1.5)

    assert summary.counters.dead_letters == len(broken)
    kept_bytes = config.events.max_dead_letter_payload_bytes
    letters = read_topic(config, config.topics.dead_letters)
    seen: dict[Position, str] = {}
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        assert headers["source_topic"] == config.topics.interactions
        position = (int(headers["source_partition"]), int(headers["source_offset"]))
        original = broken[position]
        seen[position] = headers["reason"]
        assert headers["detail"] and "\n" not in headers["detail"]
        assert (letter.value or b"") == (original.value or b"")[:kept_bytes]
        assert letter.key == _kept_key(original.key)
    assert seen == {position: str(record.reason) for position, record in broken.items()}
    with UnitOfWork(engine) as uow:
        stored = uow.dead_letters.recent(limit=10 * len(stream))
    assert sorted((d.source_partition, d.source_offset, d.reason) for d in stored) == sorted(
        (partition, offset, str(record.reason)) for (partition, offset), record in broken.items()
    )

    valid = [
        SourceRecord(config.topics.interactions, partition, offset, record.key, record.value)
        for (partition, offset), record in sorted(positions.items())
        if record.valid
    ]
    expected = _clean_run(config, model, valid)
    assert differences(expected, database_snapshot(database_url)) == []
    assert published_users(config) == {user_id for user_id, _ in expected.interactions}


def _produce(config: Settings, stream: list[StreamRecord]) -> dict[Position, StreamRecord]:
    """Produce ``stream`` in order (Kafka's partitioner places each record by its key) and
    return where each record landed."""
    producer = create_producer(config)
    try:
        sent = [
            (producer.send(config.topics.interactions, key=record.key, value=record.value), record)
            for record in stream
        ]
        producer.flush()
        landed = {}
        for future, record in sent:
            metadata = future.get(timeout=30)
            landed[(metadata.partition, metadata.offset)] = record
        return landed
    finally:
        producer.close()


def _kept_key(key: bytes | None) -> bytes | None:
    return None if key is None else key[:MAX_DEAD_LETTER_KEY_BYTES]


def _clean_run(config: Settings, model: EfficientRec, valid: list[SourceRecord]) -> StateSnapshot:
    """The state of one batch of the valid records alone, under ``model``, on a fresh
    in-memory database."""
    reference = create_memory_database()
    config_and_weights = model.to_version()
    with UnitOfWork(reference) as uow:
        uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, *config_and_weights))
        uow.commit()
    IngestService(config, reference).apply(valid)
    with UnitOfWork(reference) as uow:
        return take_snapshot(uow)


def _delete_all_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
