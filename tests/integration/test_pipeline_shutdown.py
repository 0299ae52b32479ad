"""Clean shutdown: SIGTERM finishes the batch in hand, commits it to the database and to
Kafka, and leaves the group; a restart goes on from there."""

from __future__ import annotations

import signal

from kafka.structs import TopicPartition
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.kafka import create_consumer
from streamrec.storage import UnitOfWork
from tests.integration.pipeline_support import (
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    produce,
    register_model,
    start_consumer,
    wait_for_stored_offsets,
)

EVENTS = 1_500


@on_postgresql
def test_sigterm_finishes_the_batch_commits_and_leaves(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url, max_poll_records=250)
    register_model(engine, settings)
    produce(settings, interaction_stream(EVENTS, seed=51))

    consumer = start_consumer(settings)
    wait_for_stored_offsets(database_url, settings, at_least=200)
    consumer.process.send_signal(signal.SIGTERM)
    status, output = consumer.wait(timeout=30)
    assert status == 0, output
    assert "stop requested" in output

    with UnitOfWork(engine) as uow:
        stored = uow.offsets.get(settings.kafka.consumer_group, settings.topics.interactions)
    assert 200 <= sum(stored.values()) < EVENTS, "it stopped mid-stream"
    # The last batch reached Kafka's commit too: nothing was left half-done.
    reader = create_consumer(settings, group_id=settings.kafka.consumer_group)
    try:
        committed = {
            partition: reader.committed(TopicPartition(settings.topics.interactions, partition))
            for partition in stored
        }
    finally:
        reader.close()
    assert committed == stored

    # A restart finishes the stream from the stored offsets.
    status, output = start_consumer(settings, "--idle-exit", "2").wait()
    assert status == 0, output
    with UnitOfWork(engine) as uow:
        stored = uow.offsets.get(settings.kafka.consumer_group, settings.topics.interactions)
        assert uow.dead_letters.counts_by_reason() == {}
    assert sum(stored.values()) == EVENTS, output
