"""The API's pipeline status against the real local broker and PostgreSQL: after a consumer
applied events and more wait unread, each partition's lag is its log's end offset minus the
stored offset, and the throughput between two status reads is positive (the API tests
without a broker see every lag unknown and no throughput). And the OpenAPI UI at /docs."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Engine

from streamrec.api.broker_offsets import FRESH_SECONDS
from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.kafka import create_consumer, create_producer
from streamrec.storage import UnitOfWork
from streamrec.wire import encode_interaction
from tests.integration.api_support import api_client
from tests.integration.pipeline_support import (
    PipelineStack,
    catalogue,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    read_topic,
)

Partition = tuple[str, int]


def produce_one_record_per_batch(settings: Settings, events: Sequence[InteractionEvent]) -> None:
    """Each event sent and acknowledged before the next: one record batch each. The local
    broker lists a log's end as its last batch's base offset plus one, which is then exact."""
    producer = create_producer(settings)
    try:
        for event in events:
            producer.send(
                settings.topics.interactions,
                key=event.user_id.encode(),
                value=encode_interaction(event),
            ).get(timeout=30)
    finally:
        producer.close()


def log_ends(settings: Settings, topics: Sequence[str]) -> dict[Partition, int]:
    """Each partition's end offset, from the records it holds: one past the last."""
    consumer = create_consumer(settings, group_id=None)
    try:
        ends = {
            (topic, partition): 0
            for topic in topics
            for partition in consumer.partitions_for_topic(topic) or ()
        }
    finally:
        consumer.close()
    for topic in topics:
        for record in read_topic(settings, topic):
            key = (topic, record.partition)
            ends[key] = max(ends[key], record.offset + 1)
    return ends


def stored_offsets(engine: Engine, settings: Settings, topics: Sequence[str]) -> dict:
    with UnitOfWork(engine) as uow:
        return {
            (topic, partition): offsets.next_offset
            for topic in topics
            for partition, offsets in uow.offsets.stored(
                settings.kafka.consumer_group, topic
            ).items()
        }


@on_postgresql
def test_the_status_gives_each_partitions_lag_and_the_throughput(pipeline: PipelineStack) -> None:
    settings = pipeline.settings
    topics = [settings.topics.interactions, settings.topics.items]
    pipeline.feed(interaction_stream(120, seed=1), catalogue())

    with api_client(settings) as (client, _):
        first = client.get("/api/status").json()
        assert first["broker_error"] is None, first
        assert first["total_lag"] == 0, first
        assert first["records_per_second"] is None  # nothing to compare with yet
        read_at = time.monotonic()

        # More events applied, then some left for the consumers.
        pipeline.feed(interaction_stream(120, seed=2))
        produce_one_record_per_batch(settings, interaction_stream(40, seed=3, users=12))
        # The API reads the broker at most every FRESH_SECONDS.
        time.sleep(max(0.0, FRESH_SECONDS - (time.monotonic() - read_at)) + 0.1)
        second = client.get("/api/status").json()

    ends = log_ends(settings, topics)
    stored = stored_offsets(pipeline.engine, settings, topics)
    assert second["broker_error"] is None, second
    partitions = {(p["topic"], p["partition"]): p for p in second["partitions"]}
    assert set(partitions) == set(ends)
    for key, partition in partitions.items():
        assert partition["log_end"] == ends[key], partition
        assert partition["stored_offset"] == stored.get(key), partition
        assert partition["lag"] == ends[key] - stored.get(key, 0), partition
    lags = [partition["lag"] for partition in partitions.values()]
    assert second["total_lag"] == sum(lags) == 40
    assert sum(1 for lag in lags if lag) > 1  # the unread events are on several partitions
    # Records were applied between the two reads: a positive rate.
    assert second["records_per_second"] > 0


def test_the_openapi_ui_is_served(database_url: str, kafka_settings: Settings) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    with api_client(settings) as (client, _):
        page = client.get("/docs")
        assert page.status_code == 200
        assert "swagger-ui" in page.text.lower() and "/openapi.json" in page.text
        schema = client.get("/openapi.json").json()
    assert "/api/status" in schema["paths"]
