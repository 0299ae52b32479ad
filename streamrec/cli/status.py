"""``streamrec status``: consumer lag per partition, progress, dead letters, model, counts.

Lag compares the broker's end offsets with the offsets the consumers stored in the database
(the truth for resuming). A broker that does not answer leaves the database part shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KafkaTopicPartition

TopicPartition = tuple[str, int]


@click.command(name="status")
@click.pass_obj
def command(settings: Settings) -> None:
    """Print consumer lag, events processed, dead letters, active model, users and items."""
    from rich.console import Console
    from rich.table import Table

    from streamrec.services.status import read_status
    from streamrec.storage import UnitOfWork, create_database_engine

    topics = [settings.topics.interactions, settings.topics.items]
    beginning, end, broker_error = _broker_offsets(settings, topics)
    engine = create_database_engine(settings.effective_database_url)
    try:
        with UnitOfWork(engine) as uow:
            status = read_status(
                uow, settings.kafka.consumer_group, topics, beginning, end, broker_error
            )
    finally:
        engine.dispose()

    console = Console()
    table = Table(title=f"consumer group {status.consumer_group}")
    for column in ("topic", "partition", "stored offset", "end offset", "lag"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for lag in status.partitions:
        table.add_row(
            lag.topic,
            str(lag.partition),
            _shown(lag.stored),
            _shown(lag.end),
            _shown(lag.lag),
        )
    console.print(table)
    if status.broker_error:
        console.print(f"broker: {status.broker_error}")
    letters = ", ".join(
        f"{reason} {count}" for reason, count in status.dead_letters_by_reason.items()
    )
    model = status.active_model_version
    console.print(
        f"records processed: {status.records_processed}    total lag: {_shown(status.total_lag)}\n"
        f"dead letters: {sum(status.dead_letters_by_reason.values())}"
        f"{f' ({letters})' if letters else ''}\n"
        f"active model version: {'none' if model is None else model}\n"
        f"users with state: {status.users_with_state}    items: {status.items}    "
        f"interactions: {status.interactions}"
    )


def _broker_offsets(
    settings: Settings, topics: list[str]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int], str | None]:
    """(beginning offsets, end offsets, None), or empty maps and why the broker failed."""
    from kafka.errors import KafkaError

    from streamrec.errors import UserFacingError
    from streamrec.kafka import create_consumer

    try:
        consumer = create_consumer(settings, group_id=None)
    except UserFacingError as error:
        return {}, {}, str(error)
    try:
        partitions = [
            partition for topic in topics for partition in _partitions_of(consumer, topic)
        ]
        beginning = consumer.beginning_offsets(partitions)
        end = consumer.end_offsets(partitions)
    except KafkaError as error:
        return {}, {}, f"cannot read offsets: {error}"
    finally:
        consumer.close()
    return (
        {(p.topic, p.partition): offset for p, offset in beginning.items()},
        {(p.topic, p.partition): offset for p, offset in end.items()},
        None,
    )


def _partitions_of(consumer: KafkaConsumer, topic: str) -> list[KafkaTopicPartition]:
    from kafka.structs import TopicPartition as KafkaTopicPartition

    return [
        KafkaTopicPartition(topic, partition)
        for partition in sorted(consumer.partitions_for_topic(topic) or ())
    ]


def _shown(value: int | None) -> str:
    return "-" if value is None else str(value)
