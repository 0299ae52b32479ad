"""Routing through the real broker: an event keyed by another user, and an event on the other
input topic, are dead-lettered with their reason instead of being applied."""

from __future__ import annotations

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.events import InteractionEvent, ItemEvent
from streamrec.kafka import create_producer
from streamrec.storage import UnitOfWork
from streamrec.wire import encode_interaction, encode_item
from tests.integration.pipeline_support import (
    consume_in_process,
    on_postgresql,
    pipeline_settings,
    read_topic,
    register_model,
)


@on_postgresql
def test_mis_keyed_and_misrouted_events_are_dead_lettered(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    register_model(engine, settings)
    topics = settings.topics
    alice = InteractionEvent("e1", "alice", "i1", "click", 1_700_000_000.0)
    keyed_as_bob = InteractionEvent("e2", "alice", "i2", "click", 1_700_000_001.0)
    keyless = InteractionEvent("e3", "alice", "i3", "click", 1_700_000_002.0)
    on_items_topic = InteractionEvent("e4", "carol", "i4", "click", 1_700_000_003.0)
    movie = ItemEvent("i9", 1.0, "Toy Story", {"genres": ("Animation",)}, {})
    producer = create_producer(settings)
    try:
        sends = [
            (topics.interactions, b"alice", encode_interaction(alice)),
            (topics.interactions, b"bob", encode_interaction(keyed_as_bob)),
            (topics.interactions, None, encode_interaction(keyless)),
            (topics.items, b"i4", encode_interaction(on_items_topic)),
            (topics.interactions, b"i9", encode_item(movie)),
        ]
        for topic, key, value in sends:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()

    summary = consume_in_process(settings, engine)

    assert dict(summary.counters.dead_letters_by_reason) == {"key_mismatch": 1, "wrong_topic": 2}
    with UnitOfWork(engine) as uow:
        applied = uow.interactions.for_users({"alice", "bob", "carol"})
        items = uow.items.get_many(["i4", "i9"])
    assert {user: {row.item_id for row in rows} for user, rows in applied.items() if rows} == {
        "alice": {"i1", "i3"}
    }
    assert not items
    letters = read_topic(settings, topics.dead_letters)
    assert sorted(
        (dict(letter.headers)["reason"].decode(), letter.key, letter.value) for letter in letters
    ) == sorted(
        [
            ("key_mismatch", b"bob", encode_interaction(keyed_as_bob)),
            ("wrong_topic", b"i4", encode_interaction(on_items_topic)),
            ("wrong_topic", b"i9", encode_item(movie)),
        ]
    )
