"""Stored offsets outside the log: a topic recreated after a run holds new records at offsets
the consumer group believes it applied. The consumer stops instead of skipping them, status
shows the condition, and the operator's ``--reset-offsets`` resumes, recorded. Real broker,
real PostgreSQL, the consumer as ``streamrec consume`` in a child process."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import Engine

from streamrec.cli.main import cli
from streamrec.config import Settings
from streamrec.offsets import LogRange, OffsetResetChoice, StoredOffsets
from streamrec.storage import UnitOfWork
from tests.fixtures.snapshots import differences
from tests.integration.pipeline_support import (
    catalogue,
    consume_in_process,
    database_snapshot,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    produce,
    read_topic,
    reference_snapshot,
    register_model,
    settings_environment,
    start_consumer,
)

EVENTS = 200
# Where the previous run of the group stopped, on the topic's earlier incarnation.
EARLIER_RUN_OFFSET = 825


def _recreated_topic(settings: Settings, engine: Engine) -> dict[int, int]:
    """Store the offsets of an earlier run past the end of every interactions partition, as
    a deleted and recreated topic leaves them; return each partition's real end."""
    ends: dict[int, int] = {}
    for record in read_topic(settings, settings.topics.interactions):
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    earlier = dict.fromkeys(range(settings.kafka.partitions), EARLIER_RUN_OFFSET)
    with UnitOfWork(engine) as uow:
        uow.offsets.save(settings.kafka.consumer_group, settings.topics.interactions, earlier)
        uow.offsets.acknowledge(
            settings.kafka.consumer_group, settings.topics.interactions, earlier
        )
        uow.commit()
    return ends


def _status(settings: Settings) -> str:
    shown = CliRunner().invoke(
        cli, ["status"], env=settings_environment(settings), catch_exceptions=False
    )
    assert shown.exit_code == 0, shown.output
    return shown.output


@on_postgresql
def test_a_recreated_topic_stops_the_consumer_until_earliest_reads_it_all(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    model = register_model(engine, settings)
    events = interaction_stream(EVENTS, seed=5)
    produce(settings, events, items=catalogue())
    ends = _recreated_topic(settings, engine)
    interactions = settings.topics.interactions

    status, output = start_consumer(settings, "--idle-exit", "3").wait()
    assert status != 0, output
    assert "Traceback" not in output
    [message] = [line for line in output.splitlines() if line.startswith("streamrec: ")]
    for partition, end in ends.items():
        assert f"{interactions}[{partition}]: stored offset {EARLIER_RUN_OFFSET}, log 0..{end}" in (
            message
        )
    assert "--reset-offsets earliest|latest" in message
    with UnitOfWork(engine) as uow:
        assert uow.interactions.count() == 0
        assert uow.items.count() == 0
        assert uow.offsets.recent_resets(settings.kafka.consumer_group) == []

    shown = _status(settings)
    for partition, end in ends.items():
        assert f"{interactions}[{partition}] OUT OF RANGE: stored 825, log 0..{end}" in shown
    assert "total lag: -" in shown
    assert "total lag: 0" not in shown

    status, output = start_consumer(
        settings, "--reset-offsets", "earliest", "--idle-exit", "3"
    ).wait()
    assert status == 0, output
    # Each reset is logged, naming what was outside the log and where it went.
    for partition in range(settings.kafka.partitions):
        assert (
            f"offset reset by the operator's choice: {interactions}[{partition}]: stored "
            f"offset {EARLIER_RUN_OFFSET} outside the log 0..{ends.get(partition, 0)}, reset "
            "to earliest (0)"
        ) in output
    # Every event of the recreated topic applied, as an uninterrupted run applies them.
    assert differences(reference_snapshot(settings, model), database_snapshot(database_url)) == []
    with UnitOfWork(engine) as uow:
        resets = uow.offsets.recent_resets(settings.kafka.consumer_group, limit=10)
        stored = uow.offsets.stored(settings.kafka.consumer_group, interactions)
    assert sorted((reset.topic, reset.partition) for reset in resets) == [
        (interactions, partition) for partition in range(settings.kafka.partitions)
    ]
    assert {reset.choice for reset in resets} == {OffsetResetChoice.EARLIEST}
    assert {reset.stored_offset for reset in resets} == {EARLIER_RUN_OFFSET}
    assert {(r.partition, r.log, r.new_offset) for r in resets} == {
        (partition, LogRange(0, ends.get(partition, 0)), 0)
        for partition in range(settings.kafka.partitions)
    }
    assert stored == {
        partition: StoredOffsets(ends.get(partition, 0), ends.get(partition, 0))
        for partition in range(settings.kafka.partitions)
    }

    shown = _status(settings)
    assert "OUT OF RANGE" not in shown
    assert "total lag: 0" in shown
    assert "last offset resets:" in shown
    assert f"{interactions}[0]: stored offset 825 outside the log 0..{ends[0]}" in shown


@on_postgresql
def test_latest_skips_what_the_recreated_topic_holds_and_reads_what_follows(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    register_model(engine, settings)
    produce(settings, interaction_stream(EVENTS, seed=6), items=catalogue())
    ends = _recreated_topic(settings, engine)

    status, output = start_consumer(
        settings, "--reset-offsets", "latest", "--idle-exit", "3"
    ).wait()
    assert status == 0, output
    with UnitOfWork(engine) as uow:
        assert uow.interactions.count() == 0
        stored = uow.offsets.stored(settings.kafka.consumer_group, settings.topics.interactions)
        resets = uow.offsets.recent_resets(settings.kafka.consumer_group, limit=10)
    assert {partition: offsets.next_offset for partition, offsets in stored.items()} == {
        partition: ends.get(partition, 0) for partition in range(settings.kafka.partitions)
    }
    assert {(reset.choice, reset.new_offset) for reset in resets} == {
        (OffsetResetChoice.LATEST, ends.get(partition, 0))
        for partition in range(settings.kafka.partitions)
    }

    # What is produced after the reset is read as usual, without the flag.
    later = interaction_stream(60, seed=7)
    produce(settings, later)
    consume_in_process(settings, engine)
    with UnitOfWork(engine) as uow:
        assert uow.interactions.count() == len({(e.user_id, e.item_id) for e in later})
        assert len(uow.offsets.recent_resets(settings.kafka.consumer_group, limit=10)) == len(
            resets
        )
