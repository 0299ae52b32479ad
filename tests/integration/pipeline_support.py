"""What the pipeline tests share: a small model, event streams, consumers in-process or as
child processes, and reading the output topics back. Everything is real: the session broker,
PostgreSQL, kafka-python clients."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from kafka.structs import TopicPartition
from pydantic import SecretStr
from sqlalchemy import Engine

from consumers import ConsumerHooks, InteractionConsumer, RunSummary
from streamrec.config import Settings
from streamrec.events import InteractionEvent, ItemEvent
from streamrec.kafka import create_consumer, create_producer, ensure_topics, streamrec_topic_names
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.services.batch import SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage import UnitOfWork, create_database_engine
from streamrec.storage.memory import create_memory_database
from streamrec.wire import encode_interaction, encode_item
from tests.fixtures.snapshots import StateSnapshot, take_snapshot

# The pipeline's promises are about PostgreSQL, the production database.
on_postgresql = pytest.mark.parametrize(
    "database_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)]
)

SMALL_MODEL = {
    "hash_buckets": 512,
    "item_dim": 8,
    "profile_dim": 8,
    "hidden_dim": 16,
    "clusters": 6,
    "feature_buckets": 64,
}
SMALL_SERVING = {"top_memberships": 3, "shortlist_length": 10, "recommendations": 5}
# Small batches make many batches, and so many places for a crash to land.
SMALL_BATCH = 40
REPOSITORY = Path(__file__).resolve().parents[2]

torch.set_num_threads(1)


def pipeline_settings(
    kafka_settings: Settings,
    database_url: str,
    *,
    timeouts: dict[str, Any] | None = None,
    **kafka: Any,
) -> Settings:
    """The test's broker settings with a database, a small model, small batches, short
    polls, and ``timeouts`` and ``kafka`` overrides."""
    return kafka_settings.model_copy(
        update={
            "database_url": SecretStr(database_url),
            "model": kafka_settings.model.model_copy(update=SMALL_MODEL),
            "serving": kafka_settings.serving.model_copy(update=SMALL_SERVING),
            "kafka": kafka_settings.kafka.model_copy(
                update={"max_poll_records": SMALL_BATCH, **kafka}
            ),
            "timeouts": kafka_settings.timeouts.model_copy(
                update={"kafka_poll_ms": 100, **(timeouts or {})}
            ),
        }
    )


def fresh_topics(settings: Settings) -> Settings:
    """``settings`` with new topic names and consumer group, topics created."""
    suffix = uuid.uuid4().hex[:12]
    renamed = settings.model_copy(
        update={
            "topics": settings.topics.model_copy(
                update={
                    name: f"{topic}-{suffix}"
                    for name, topic in settings.topics.model_dump().items()
                }
            ),
            "kafka": settings.kafka.model_copy(
                update={"consumer_group": f"{settings.kafka.consumer_group}-{suffix}"}
            ),
        }
    )
    ensure_topics(renamed, streamrec_topic_names(renamed))
    return renamed


def activate_model(engine: Engine, model: EfficientRec) -> int:
    """Store ``model`` as a new, active version; returns its number."""
    config, weights = model.to_version()
    with UnitOfWork(engine) as uow:
        version = uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, config, weights))
        uow.commit()
    return version


def register_model(engine: Engine, settings: Settings, seed: int = 0) -> EfficientRec:
    """Register an (untrained, seeded) model of ``settings`` as the active version."""
    model = EfficientRec.new(settings.model, FeatureSchema(), seed=seed)
    activate_model(engine, model)
    return model


def interaction_stream(
    count: int, seed: int = 0, users: int = 30, items: int = 40
) -> list[InteractionEvent]:
    """Ratings and clicks with repeated deliveries and some out-of-order timestamps."""
    rng = random.Random(seed)
    events: list[InteractionEvent] = []
    for number in range(count):
        if events and rng.random() < 0.08:
            events.append(rng.choice(events))  # the same event delivered again
            continue
        rating = rng.random() < 0.7
        events.append(
            InteractionEvent(
                event_id=f"s{seed}-e{number}",
                user_id=f"u{rng.randrange(users)}",
                item_id=f"i{rng.randrange(items)}",
                type="rating" if rating else rng.choice(["click", "like", "skip"]),
                value=rng.choice([0.5, 1.5, 2.5, 3.0, 4.0, 5.0]) if rating else None,
                timestamp=1_700_000_000.0 + number - rng.choice([0.0, 0.0, 0.0, 45.0]),
                user_attributes={"age": rng.choice(["18-24", "25-34"])} if number % 7 else {},
            )
        )
    return events


def catalogue(items: int = 40) -> list[ItemEvent]:
    return [
        ItemEvent(f"i{number}", 1.0, f"Item {number}", {"genre": (f"g{number % 4}",)}, {})
        for number in range(items)
    ]


def produce(
    settings: Settings,
    interactions: Sequence[InteractionEvent | bytes],
    items: Sequence[ItemEvent] = (),
) -> None:
    """Produce item events, then interactions (events or raw payloads), keyed, and flush."""
    producer = create_producer(settings)
    try:
        for item in items:
            producer.send(settings.topics.items, key=item.item_id.encode(), value=encode_item(item))
        producer.flush()
        for number, event in enumerate(interactions):
            if isinstance(event, bytes):
                producer.send(
                    settings.topics.interactions, key=f"raw{number}".encode(), value=event
                )
            else:
                producer.send(
                    settings.topics.interactions,
                    key=event.user_id.encode(),
                    value=encode_interaction(event),
                )
        producer.flush()
    finally:
        producer.close()


def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every message of ``topic`` (kafka-python records), partition by partition."""
    consumer = create_consumer(settings, group_id=None)
    try:
        partitions = [
            TopicPartition(topic, partition)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=200)
            for batch in polled.values():
                records.extend(batch)
            # The local broker reports an end offset inside the last record batch, so reaching
            # it is not the end: stop at the first empty poll after it.
            reached = all(
                consumer.position(partition) >= end[partition] for partition in partitions
            )
            if reached and not polled:
                break
        return records
    finally:
        consumer.close()


def input_records(settings: Settings) -> list[SourceRecord]:
    """The input topics as SourceRecords, items first, each partition in offset order."""
    return [
        SourceRecord(record.topic, record.partition, record.offset, record.key, record.value)
        for topic in (settings.topics.items, settings.topics.interactions)
        for record in read_topic(settings, topic)
    ]


def reference_snapshot(settings: Settings, model: EfficientRec) -> StateSnapshot:
    """The state an uninterrupted, single-batch run over the input topics ends in."""
    engine = create_memory_database()
    activate_model(engine, model)
    IngestService(settings, engine).apply(input_records(settings))
    with UnitOfWork(engine) as uow:
        return take_snapshot(uow)


def database_snapshot(database_url: str) -> StateSnapshot:
    engine = create_database_engine(database_url)
    try:
        with UnitOfWork(engine) as uow:
            return take_snapshot(uow)
    finally:
        engine.dispose()


def consume_in_process(
    settings: Settings,
    engine: Engine,
    *,
    idle_exit_seconds: float = 2.0,
    hooks: ConsumerHooks | None = None,
) -> RunSummary:
    """Run one consumer in this thread until the input has been idle for a while."""
    consumer = InteractionConsumer(
        settings,
        IngestService(settings, engine),
        create_consumer(settings, group_id=settings.kafka.consumer_group),
        create_producer(settings),
        hooks=hooks,
    )
    return consumer.run(idle_exit_seconds=idle_exit_seconds)


@dataclass
class ConsumerProcess:
    """``streamrec consume`` in a child process, configured through the environment."""

    process: subprocess.Popen[str]

    def wait(self, timeout: float = 60.0) -> tuple[int, str]:
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def start_consumer(settings: Settings, *arguments: str) -> ConsumerProcess:
    command = [sys.executable, "-m", "streamrec.cli.main", "consume", *arguments]
    process = subprocess.Popen(
        command,
        cwd=REPOSITORY,
        env=settings_environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return ConsumerProcess(process)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The process environment that reproduces ``settings`` in a child process."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("STREAMREC_")
    }
    environment.update(_as_variables(settings.model_dump(mode="json"), "STREAMREC_"))
    environment["STREAMREC_DATABASE_URL"] = settings.effective_database_url
    environment["STREAMREC_OBSERVABILITY__LOG_LEVEL"] = "WARNING"
    return environment


def _as_variables(values: dict[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    import json

    for name, value in values.items():
        if value is None or name == "database_url":
            continue
        if isinstance(value, dict) and prefix == "STREAMREC_":
            yield from _as_variables(value, f"{prefix}{name.upper()}__")
        elif isinstance(value, dict | list):
            yield f"{prefix}{name.upper()}", json.dumps(value)
        else:
            yield f"{prefix}{name.upper()}", str(value)


def wait_for_stored_offsets(database_url: str, settings: Settings, at_least: int) -> None:
    """Block until the consumers stored offsets covering ``at_least`` interaction records."""
    engine = create_database_engine(database_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with UnitOfWork(engine) as uow:
                stored = uow.offsets.get(
                    settings.kafka.consumer_group, settings.topics.interactions
                )
            if sum(stored.values()) >= at_least:
                return
            time.sleep(0.05)
        raise AssertionError(f"the consumer did not store {at_least} offsets within 60 s")
    finally:
        engine.dispose()


@dataclass(frozen=True)
class PipelineStack:
    """One test's streaming pipeline, every part real: ``settings`` naming the test's own
    topics on the session broker and its database, the active model ``version`` stored
    there, and consumers run in this thread by ``feed``."""

    settings: Settings
    engine: Engine
    version: int

    @classmethod
    def with_active_model(
        cls, settings: Settings, engine: Engine, model: EfficientRec | None = None
    ) -> PipelineStack:
        """The pipeline of ``settings`` over ``engine``'s database, with ``model`` stored as
        the active version (by default an untrained model of ``settings``, seeded 0)."""
        if model is None:
            model = EfficientRec.new(settings.model, FeatureSchema(), seed=0)
        return cls(settings, engine, activate_model(engine, model))

    def feed(
        self,
        interactions: Sequence[InteractionEvent | bytes],
        items: Sequence[ItemEvent] = (),
        *,
        idle_exit_seconds: float = 2.0,
        hooks: ConsumerHooks | None = None,
    ) -> RunSummary:
        """Produce ``items``, then ``interactions``, and run one consumer in this thread
        until the input has been idle for ``idle_exit_seconds``; returns what it did."""
        produce(self.settings, interactions, items)
        return consume_in_process(
            self.settings, self.engine, idle_exit_seconds=idle_exit_seconds, hooks=hooks
        )

    def published_recommendations(self) -> list[Any]:
        """Every message on the recommendations topic (kafka-python records)."""
        return read_topic(self.settings, self.settings.topics.recommendations)
