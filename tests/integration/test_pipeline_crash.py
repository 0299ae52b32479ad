"""Crash recovery: consumers killed with SIGKILL from the test at each stage of a batch, and
at a random moment, restart and end in the state of an uninterrupted run, with nothing lost
or doubled.

The stages are reached from outside, with nothing in the consumer built for the test: a
trigger holds the batch's transaction, its commit, or its acknowledgement, on a lock the test
owns (``OffsetGate``); a consumer stopped while its commit is held never publishes it."""

from __future__ import annotations

import random

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.storage import UnitOfWork
from tests.fixtures.snapshots import differences
from tests.integration.chaos_support import (
    OffsetGate,
    kill_hard,
    kill_streamrec_children_left_behind,  # noqa: F401 (an autouse fixture)
    offset_totals,
    stopped,
    wait_for_offset_totals,
)
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

EVENTS = 480


@on_postgresql
def test_killed_consumers_resume_and_end_in_the_uninterrupted_state(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    # A member killed by -9 is only noticed after its session timeout: keep it short here.
    settings = pipeline_settings(
        kafka_settings,
        database_url,
        timeouts={"kafka_session_ms": 2_000, "kafka_heartbeat_ms": 500},
    )
    model = register_model(engine, settings)
    events = interaction_stream(EVENTS, seed=11)
    produce(settings, [*events, b'{"broken": '], items=catalogue())

    # Inside a batch's transaction, before its commit.
    with OffsetGate(engine, "next_offset") as gate:
        consumer = start_consumer(settings)
        gate.wait_for_a_held_transaction(alive=[consumer.process])
        kill_hard(consumer.process)
    assert offset_totals(engine, settings) == (0, 0)

    # Between the database commit and the publication.
    _kill_between_commit_and_publication(settings, engine)
    assert read_topic(settings, settings.topics.recommendations) == []

    # Between the publication and the acknowledgement (and the Kafka commit).
    with OffsetGate(engine, "acknowledged_offset") as gate:
        consumer = start_consumer(settings)
        gate.wait_for_a_held_transaction(alive=[consumer.process])
        stored, acknowledged = offset_totals(engine, settings)
        kill_hard(consumer.process)
    assert stored > acknowledged

    # After a whole batch: applied, published and acknowledged.
    consumer = start_consumer(settings)
    wait_for_offset_totals(engine, settings, acknowledged_above=stored, alive=[consumer.process])
    kill_hard(consumer.process)

    # And at whatever point the consumer has reached.
    consumer = start_consumer(settings)
    with UnitOfWork(engine) as uow:
        stored = sum(
            uow.offsets.get(settings.kafka.consumer_group, settings.topics.interactions).values()
        )
    wait_for_stored_offsets(database_url, settings, at_least=stored + random.randint(1, 120))
    kill_hard(consumer.process)

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
    settings = pipeline_settings(
        kafka_settings,
        database_url,
        timeouts={"kafka_session_ms": 2_000, "kafka_heartbeat_ms": 500},
    )
    register_model(engine, settings)
    events = interaction_stream(3 * SMALL_BATCH, seed=12, users=10**9)
    users = {event.user_id for event in events}
    assert len(users) > 2 * SMALL_BATCH
    produce(settings, events)  # no catalogue: the first batch holds interactions

    _kill_between_commit_and_publication(settings, engine)
    # Proof of the stage: the first batch is stored, and nothing of it was published.
    assert offset_totals(engine, settings)[0] > 0
    assert read_topic(settings, settings.topics.recommendations) == []

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


def _kill_between_commit_and_publication(settings: Settings, engine: Engine) -> None:
    """Start a consumer and kill it after its first batch's commit and before any of that
    batch's outputs leave it: the commit is held at the gate, the consumer is stopped
    (SIGSTOP), the gate released, and once the commit shows the consumer is killed without
    having run another instruction."""
    with OffsetGate(engine, "next_offset", at_commit=True) as gate:
        consumer = start_consumer(settings)
        gate.wait_for_a_held_transaction(alive=[consumer.process])
        stored, _ = offset_totals(engine, settings)
        with stopped(consumer.process):
            gate.release()
            wait_for_offset_totals(engine, settings, stored_above=stored)
            kill_hard(consumer.process)
