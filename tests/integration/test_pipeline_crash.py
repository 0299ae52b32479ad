"""Crash recovery: consumers killed at every stage of a batch, and by kill -9 at a random
moment, restart and end in the state of an uninterrupted run, with nothing lost or doubled."""

from __future__ import annotations

import random

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.services.snapshot import differences
from streamrec.storage import UnitOfWork
from tests.integration.pipeline_support import (
    SMALL_BATCH,
    catalogue,
    database_snapshot,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    produce,
    read_topic,
    reference_snapshot,
    register_model,
    start_consumer,
    wait_for_stored_offsets,
)

KILLED = 137
EVENTS = 480


@on_postgresql
def test_killed_consumers_resume_and_end_in_the_uninterrupted_state(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    # A member killed by -9 is only noticed after its session timeout: keep it short here.
    settings = pipeline_settings(
        kafka_settings, database_url, session_timeout_ms=2_000, heartbeat_interval_ms=500
    )
    model = register_model(engine, settings)
    events = interaction_stream(EVENTS, seed=11)
    produce(settings, [*events, b'{"broken": '], items=catalogue())

    # Between the database commit and the publication, between the publication and the
    # Kafka commit, before anything, and after everything of a batch.
    for stage_and_batch in ("stored:2", "published:3", "polled:2", "committed:1"):
        status, output = start_consumer(settings, "--exit-at", stage_and_batch).wait()
        assert status == KILLED, output

    # And a real kill -9, at whatever point the consumer has reached.
    consumer = start_consumer(settings)
    with UnitOfWork(engine) as uow:
        stored = sum(
            uow.offsets.get(settings.kafka.consumer_group, settings.topics.interactions).values()
        )
    wait_for_stored_offsets(database_url, settings, at_least=stored + random.randint(1, 120))
    consumer.kill()

    status, output = start_consumer(settings, "--idle-exit", "2").wait()
    assert status == 0, output

    expected = reference_snapshot(settings, model)
    actual = database_snapshot(database_url)
    assert len(actual.interactions) == len({(e.user_id, e.item_id) for e in events})
    assert differences(expected, actual) == []
    # Outputs are at-least-once: every user's recommendations were published.
    published = {
        record.key.decode() for record in read_topic(settings, settings.topics.recommendations)
    }
    assert published == {event.user_id for event in events}
    with UnitOfWork(engine) as uow:
        # The broken record was stored once, however often its batch was read.
        assert uow.dead_letters.counts_by_reason() == {"invalid_json": 1}
        stored_offsets = uow.offsets.get(
            settings.kafka.consumer_group, settings.topics.interactions
        )
    assert sum(stored_offsets.values()) == EVENTS + 1


@on_postgresql
def test_a_batch_stored_but_not_published_is_published_after_a_restart(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    # One event per user, so no later event of the same user can hide a lost publication.
    settings = pipeline_settings(kafka_settings, database_url)
    register_model(engine, settings)
    events = interaction_stream(3 * SMALL_BATCH, seed=12, users=10**9)
    users = {event.user_id for event in events}
    assert len(users) > 2 * SMALL_BATCH
    produce(settings, events)  # no catalogue: the first batch holds interactions

    status, output = start_consumer(settings, "--exit-at", "stored:1").wait()
    assert status == KILLED, output
    status, output = start_consumer(settings, "--idle-exit", "2").wait()
    assert status == 0, output

    published = {
        record.key.decode() for record in read_topic(settings, settings.topics.recommendations)
    }
    assert published == users
    with UnitOfWork(engine) as uow:
        stored_offsets = uow.offsets.get(
            settings.kafka.consumer_group, settings.topics.interactions
        )
    assert sum(stored_offsets.values()) == len(events)
