"""``streamrec status``: consumer lag per partition, progress, dead letters, model, counts.

Lag compares the broker's end offsets with the offsets the consumers stored in the database
(the truth for resuming). A stored offset outside the log (a recreated topic, retention that
deleted unread records) is shown as OUT OF RANGE instead of a lag, with the operator's last
resets. A broker that does not answer leaves the database part shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KafkaTopicPartition

    from streamrec.offsets import LogRange, OffsetReset, StoredOffsets

TopicPartition = tuple[str, int]


@click.command(name="status")
@click.pass_obj
def command(settings: Settings) -> None:
    """Print consumer lag, events processed, dead letters, active model, users and items."""
    from rich.console import Console
    from rich.table import Table

    from streamrec.cli.display import print_table
    from streamrec.services.status import read_status, stored_offsets
    from streamrec.storage import UnitOfWork, create_database_engine

    topics = [settings.topics.interactions, settings.topics.items]
    group = settings.kafka.consumer_group
    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        with UnitOfWork(engine) as uow:
            stored = stored_offsets(uow, group, topics)
        log_ranges, broker_error = _broker_log_ranges(settings, topics, stored)
        with UnitOfWork(engine) as uow:
            status = read_status(uow, group, topics, log_ranges, broker_error)
    finally:
        engine.dispose()

    console = Console()
    table = Table(title=f"consumer group {status.consumer_group}")
    for column in ("topic", "partition", "stored offset", "end offset", "lag"):
        justify = "left" if column == "topic" else "right"
        table.add_column(column, justify=justify, no_wrap=column != "lag")
    for lag in status.partitions:
        table.add_row(
            lag.topic,
            str(lag.partition),
            _shown(lag.stored_offset),
            _shown(None if lag.log is None else lag.log.end),
            lag.describe_lag(),
        )
    print_table(table, console)
    # Plain lines as well as the table cells: a narrow terminal wraps or cuts the cells.
    for lag in status.outside_log:
        console.print(
            f"{lag.topic}[{lag.partition}] {lag.describe_lag()}: a consumer stops here until "
            "`streamrec consume --reset-offsets earliest|latest` (docs/operations.md, Runbook)",
            markup=False,
            soft_wrap=True,
        )
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
    if status.offset_resets:
        console.print("last offset resets:")
        for reset in status.offset_resets:
            console.print(f"  {_reset_line(reset)}", markup=False, soft_wrap=True)


def _broker_log_ranges(
    settings: Settings, topics: list[str], stored: dict[TopicPartition, StoredOffsets]
) -> tuple[dict[TopicPartition, LogRange], str | None]:
    """(each partition's log range, None), or an empty map and why the broker failed."""
    from kafka.errors import KafkaError

    from streamrec.errors import UserFacingError
    from streamrec.kafka import create_consumer, read_log_ranges

    try:
        consumer = create_consumer(settings, group_id=None)
    except UserFacingError as error:
        return {}, str(error)
    try:
        partitions = [
            (partition.topic, partition.partition)
            for topic in topics
            for partition in _partitions_of(consumer, topic)
        ]
        return read_log_ranges(settings, consumer, partitions, stored), None
    except (KafkaError, UserFacingError) as error:
        return {}, f"cannot read offsets: {error}"
    finally:
        consumer.close()


def _partitions_of(consumer: KafkaConsumer, topic: str) -> list[KafkaTopicPartition]:
    from kafka.structs import TopicPartition as KafkaTopicPartition

    return [
        KafkaTopicPartition(topic, partition)
        for partition in sorted(consumer.partitions_for_topic(topic) or ())
    ]


def _shown(value: int | None) -> str:
    return "-" if value is None else str(value)


def _reset_line(reset: OffsetReset) -> str:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(reset.reset_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{when} {reset.describe()}"
