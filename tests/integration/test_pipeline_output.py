"""The output: recommendations keyed by user id that another Kafka client (confluent-kafka)
reads and decodes; and duplicates and out-of-order events handled as documented."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.storage import UnitOfWork
from streamrec.wire.recommendations import decode_recommendation
from tests.integration.pipeline_support import (
    PipelineStack,
    catalogue,
    interaction_stream,
    on_postgresql,
)

EVENTS = 200


def read_with_confluent(settings: Settings, topic: str, expected: int) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"confluent-reader-{topic}",
            "enable.auto.commit": False,
        }
    )
    messages = []
    try:
        consumer.assign(
            [
                TopicPartition(topic, partition, OFFSET_BEGINNING)
                for partition in range(settings.kafka.partitions)
            ]
        )
        deadline = time.monotonic() + 30
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
    finally:
        consumer.close()
    return messages


@on_postgresql
def test_recommendations_are_readable_by_confluent_kafka(pipeline: PipelineStack) -> None:
    settings = pipeline.settings
    events = interaction_stream(EVENTS, seed=41)
    summary = pipeline.feed(events, items=catalogue())
    assert summary.counters.interactions_applied > 0

    published = len(pipeline.published_recommendations())
    assert published >= len({event.user_id for event in events})
    messages = read_with_confluent(settings, settings.topics.recommendations, published)
    assert len(messages) == published
    users = {event.user_id for event in events}
    for message in messages:
        recommendation = decode_recommendation(message.value())
        assert message.key().decode() == recommendation.user_id
        assert recommendation.user_id in users
        assert 0 < len(recommendation.items) <= settings.serving.recommendations
        assert recommendation.source is not None
        assert recommendation.source.topic == settings.topics.interactions
        assert recommendation.source.offset >= 0
        assert recommendation.model_version >= 1


@on_postgresql
def test_duplicates_and_out_of_order_events_follow_the_documented_rule(
    pipeline: PipelineStack,
) -> None:
    def rating(event_id: str, item: str, timestamp: float, value: float) -> InteractionEvent:
        return InteractionEvent(event_id, "u1", item, "rating", timestamp, value=value)

    stream = [
        rating("a1", "i1", 100.0, 5.0),
        rating("a1", "i1", 100.0, 5.0),  # the same event delivered twice
        rating("a0", "i1", 50.0, 0.5),  # older: must not overwrite
        rating("b1", "i2", 100.0, 1.0),
        rating("b2", "i2", 200.0, 4.0),  # newer: replaces
        rating("c2", "i3", 300.0, 2.0),
        rating("c1", "i3", 300.0, 5.0),  # same time: the greater event id (c2) wins
    ]
    counters = pipeline.feed(stream, items=catalogue(5)).counters
    assert (counters.interactions_applied, counters.interactions_ignored) == (4, 3)
    with UnitOfWork(pipeline.engine) as uow:
        rows = {row.item_id: row for row in uow.interactions.for_users(["u1"])["u1"]}
        state = uow.users.get_many(["u1"], uow.models.active_version())["u1"]
    assert {item: (row.event_id, row.weight) for item, row in rows.items()} == {
        "i1": ("a1", 1.0),
        "i2": ("b2", pytest.approx(2 * (4.0 - 0.5) / 4.5 - 1)),
        "i3": ("c2", pytest.approx(2 * (2.0 - 0.5) / 4.5 - 1)),
    }
    assert (state.interaction_count, state.nonzero_count) == (3, 3)
