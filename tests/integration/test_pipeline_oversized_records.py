"""Records larger than the broker's usual 1 MiB, and dead letters the broker refuses, never stop
a partition: the valid events around them apply, the consumer exits cleanly, and the
dead-letter topic gets one bounded copy per bad record, not a pile of duplicates on a rerun."""

from __future__ import annotations

import hashlib

from kafka import KafkaProducer
from sqlalchemy import Engine

from consumers import InteractionConsumer
from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.kafka import create_consumer, create_producer
from streamrec.services.ingest import IngestService
from streamrec.storage import UnitOfWork
from streamrec.wire import encode_interaction
from tests.integration.pipeline_support import (
    on_postgresql,
    pipeline_settings,
    read_topic,
    register_model,
    start_consumer,
)

USER = "u-large"
# Room for the test's own 10 MB record; the consumer's producer keeps its 1 MiB default.
TEST_PRODUCER_REQUEST_BYTES = 16 * 1024 * 1024


def padded_event(size: int, number: int) -> bytes:
    """A valid interaction event of ``USER`` padded with spaces to ``size`` bytes."""
    event = InteractionEvent(f"big-{number}", USER, f"big-item-{number}", "click", 1.0)
    payload = encode_interaction(event)
    return payload[:-1] + b" " * (size - len(payload)) + b"}"


def valid_events(first: int, count: int) -> list[bytes]:
    return [
        encode_interaction(
            InteractionEvent(f"e{number}", USER, f"i{number}", "click", 1_700_000_000.0 + number)
        )
        for number in range(first, first + count)
    ]


def produce_to_partition_zero(settings: Settings, payloads: list[bytes]) -> None:
    producer: KafkaProducer = create_producer(
        settings, max_request_size=TEST_PRODUCER_REQUEST_BYTES
    )
    try:
        for payload in payloads:
            producer.send(
                settings.topics.interactions, key=USER.encode(), value=payload, partition=0
            ).get(timeout=60)
    finally:
        producer.close()


def stored_items(engine: Engine) -> set[str]:
    with UnitOfWork(engine) as uow:
        return {row.item_id for row in uow.interactions.for_users({USER}).get(USER, [])}


@on_postgresql
def test_records_of_1_1_and_10_megabytes_are_dead_lettered_and_the_partition_goes_on(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    register_model(engine, settings)
    oversized = {5: padded_event(1_100_000, 1), 11: padded_event(10_000_000, 2)}
    stream = [*valid_events(0, 5), oversized[5], *valid_events(5, 5)]
    stream += [oversized[11], *valid_events(10, 5)]
    produce_to_partition_zero(settings, stream)

    status, output = start_consumer(settings, "--idle-exit", "2").wait(timeout=180)

    assert status == 0, output
    assert stored_items(engine) == {f"i{number}" for number in range(15)}
    kept = settings.events.max_dead_letter_payload_bytes
    letters = read_topic(settings, settings.topics.dead_letters)
    assert sorted(int(dict(letter.headers)["source_offset"]) for letter in letters) == [5, 11]
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        original = oversized[int(headers["source_offset"])]
        assert headers["reason"] == "payload_too_large"
        assert headers["source_topic"] == settings.topics.interactions
        assert headers["source_partition"] == "0"
        assert headers["payload_size"] == str(len(original))
        assert headers["payload_sha256"] == hashlib.sha256(original).hexdigest()
        assert headers["payload_truncated"] == "true"
        assert letter.key == USER.encode()
        assert letter.value == original[:kept]
    with UnitOfWork(engine) as uow:
        rows = uow.dead_letters.recent(limit=100)
    assert sorted((row.source_offset, row.payload) for row in rows) == [
        (offset, original[:kept]) for offset, original in sorted(oversized.items())
    ]

    # A second run finds nothing left to do: no letter is published again.
    status, output = start_consumer(settings, "--idle-exit", "2").wait(timeout=180)

    assert status == 0, output
    assert len(read_topic(settings, settings.topics.dead_letters)) == 2
    with UnitOfWork(engine) as uow:
        assert len(uow.dead_letters.recent(limit=100)) == 2
    assert stored_items(engine) == {f"i{number}" for number in range(15)}


@on_postgresql
def test_a_dead_letter_the_producer_refuses_is_published_as_its_headers(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    register_model(engine, settings)
    unparsable = b"{" + b"x" * 20_000  # invalid JSON, within every size limit but the one below
    produce_to_partition_zero(settings, [*valid_events(0, 3), unparsable, *valid_events(3, 3)])
    # The consumer's producer takes no message over 8 KiB: its copy of the bad record is
    # refused for good, as a broker's smaller max.message.bytes would refuse it.
    consumer = InteractionConsumer(
        settings,
        IngestService(settings, engine),
        create_consumer(settings, group_id=settings.kafka.consumer_group),
        create_producer(settings, max_request_size=8 * 1024),
    )

    summary = consumer.run(idle_exit_seconds=2.0)

    assert summary.stopped_because == "idle"
    assert stored_items(engine) == {f"i{number}" for number in range(6)}
    [letter] = read_topic(settings, settings.topics.dead_letters)
    headers = {name: value.decode() for name, value in letter.headers}
    assert (letter.key, letter.value) == (None, b"")
    assert headers["reason"] == "invalid_json"
    assert headers["source_offset"] == "3"
    assert headers["payload_size"] == str(len(unparsable))
    assert headers["payload_sha256"] == hashlib.sha256(unparsable).hexdigest()
    assert headers["payload_truncated"] == "true"
    with UnitOfWork(engine) as uow:
        [row] = uow.dead_letters.recent()
    assert row.payload == unparsable  # the table keeps the copy the broker refused
