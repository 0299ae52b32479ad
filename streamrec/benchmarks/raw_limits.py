"""The limits of this machine, measured in the same run as the pipeline: how fast kafka-python
moves messages through the same broker, and how fast the database takes batched inserts.

The pipeline cannot beat them; how close it gets says where its own cost lies.

>>> RawRate("kafka consume", 1000, 0.5).per_second
2000.0
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from kafka.structs import TopicPartition
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.state import Interaction
from streamrec.storage import UnitOfWork

# The consumer takes what one fetch brings, as the pipeline's consumer does.
RAW_FETCH_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class RawRate:
    what: str
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def kafka_rates(settings: Settings, events: Sequence[InteractionEvent]) -> list[RawRate]:
    """Produce ``events`` (the pipeline's wire format, keyed by user) into a fresh topic and
    read them back with a bare kafka-python consumer: the produce and consume rates."""
    from streamrec.kafka import create_consumer, create_producer, ensure_topics
    from streamrec.wire import encode_interaction

    topic = f"{settings.topics.interactions}-raw"
    ensure_topics(settings, [topic])
    payloads = [(event.user_id.encode(), encode_interaction(event)) for event in events]
    producer = create_producer(settings)
    try:
        started = time.perf_counter()
        for key, value in payloads:
            producer.send(topic, key=key, value=value)
        producer.flush()
        produced = RawRate("kafka-python produce", len(payloads), time.perf_counter() - started)
    finally:
        producer.close()
    consumer = create_consumer(settings, group_id=None, max_poll_records=RAW_FETCH_RECORDS)
    try:
        partitions = [
            TopicPartition(topic, partition)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        started = time.perf_counter()
        read = 0
        while read < len(payloads) and time.perf_counter() - started < 300:
            read += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
        consumed = RawRate("kafka-python consume", read, time.perf_counter() - started)
    finally:
        consumer.close()
    return [produced, consumed]


def database_insert_rate(
    engine: Engine, events: Sequence[InteractionEvent], batch_size: int
) -> RawRate:
    """Store ``events`` as interactions with the pipeline's own upsert, ``batch_size`` per
    transaction: the database's batched insert rate."""
    rows = [
        Interaction(event.user_id, event.item_id, 0.5, event.event_id, event.type, event.timestamp)
        for event in events
    ]
    started = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        with UnitOfWork(engine) as uow:
            uow.interactions.save_many(rows[start : start + batch_size])
            uow.commit()
    return RawRate(
        f"database upsert, {batch_size} per transaction", len(rows), time.perf_counter() - started
    )


def kafka_latencies(
    settings: Settings, events: Sequence[InteractionEvent], rate: float
) -> list[float]:
    """Seconds from each message's Kafka timestamp to its arrival at a bare kafka-python
    consumer built like the pipeline's (same fetch settings), with ``events`` offered at
    ``rate`` per second: the part of the pipeline's latency that is the broker and client."""
    import threading

    from streamrec.kafka import create_consumer, create_producer, ensure_topics
    from streamrec.wire import encode_interaction

    topic = f"{settings.topics.interactions}-raw-latency"
    ensure_topics(settings, [topic])
    consumer = create_consumer(settings, group_id=None)
    partitions = [
        TopicPartition(topic, partition)
        for partition in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    latencies: list[float] = []
    finished = threading.Event()

    def consume() -> None:
        while not finished.is_set() or len(latencies) < len(events):
            for records in consumer.poll(timeout_ms=100).values():
                arrived = time.time()
                latencies.extend(arrived - record.timestamp / 1000.0 for record in records)
            if finished.is_set() and time.monotonic() > deadline:
                return

    deadline = float("inf")
    reader = threading.Thread(target=consume, name="streamrec-raw-latency", daemon=True)
    reader.start()
    producer = create_producer(settings)
    try:
        started = time.monotonic()
        for number, event in enumerate(events):
            delay = started + number / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.send(topic, key=event.user_id.encode(), value=encode_interaction(event))
        producer.flush()
    finally:
        producer.close()
        deadline = time.monotonic() + 30.0
        finished.set()
        reader.join()
        consumer.close()
    return latencies
