"""Chaos at the door, on SQLite: streams of valid events in every legal form, interleaved with
records broken in every way the contract names (tests/fixtures/hostile_events.py), applied
by the ingest service in batches cut anywhere, then read again by a restarted consumer from
where its outputs were last acknowledged. Every valid event applies exactly once (the state
is a clean run's over the valid events alone), and every broken record is dead-lettered
exactly once, with its reason, its source and a bounded copy of its bytes."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from streamrec.config import EventSettings, Settings
from streamrec.services.batch import SourceRecord
from streamrec.services.dead_letters import MAX_DEAD_LETTER_KEY_BYTES
from streamrec.services.ingest import IngestService
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.validation import Rejection, parse_interaction
from tests.fixtures.hostile_events import (
    StreamRecord,
    hostile_records,
    hostile_streams,
    valid_records,
)
from tests.fixtures.small_model import register_model, small_model_settings
from tests.fixtures.snapshots import StateSnapshot, differences, take_snapshot

PARTITIONS = 3
MAX_BATCHES = 6

torch.set_num_threads(1)


@settings(max_examples=400, deadline=None)
@given(record=hostile_records("h0"))
def test_every_broken_record_is_refused_with_the_reason_the_contract_gives(
    record: StreamRecord,
) -> None:
    parsed = parse_interaction(record.value, EventSettings(), key=record.key)
    assert isinstance(parsed, Rejection), parsed
    assert parsed.reason == record.reason, parsed
    assert parsed.detail and "\n" not in parsed.detail


@settings(max_examples=200, deadline=None)
@given(record=valid_records("v0"))
def test_every_legal_form_of_an_event_is_accepted(record: StreamRecord) -> None:
    parsed = parse_interaction(record.value, EventSettings(), key=record.key)
    assert not isinstance(parsed, Rejection), parsed
    assert parsed.user_id.encode("utf-8") == record.key


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(stream=hostile_streams(), data=st.data())
def test_a_hostile_stream_applies_each_valid_event_once_and_dead_letters_the_rest_once(
    stream: list[StreamRecord], data: st.DataObject
) -> None:
    config = small_model_settings()
    records = source_records(stream, config.topics.interactions)
    broken = {
        (record.partition, record.offset): original
        for record, original in zip(records, stream, strict=True)
        if not original.valid
    }
    engine = create_memory_database()
    register_model(engine, config)

    consumer = IngestService(config, engine)
    published: list[tuple[int | None, int | None, str]] = []
    delivered_valid = 0
    cuts = data.draw(st.sets(st.integers(1, max(1, len(records) - 1)), max_size=MAX_BATCHES))
    for batch in batches(records, cuts):
        result = consumer.apply(batch)
        counters = result.counters
        delivered_valid += counters.interactions_applied + counters.interactions_ignored
        published += [(d.source_partition, d.source_offset, d.reason) for d in result.dead_letters]
        # Some batches' outputs are never acknowledged, as when a consumer dies after the
        # commit: those records are read again below.
        if data.draw(st.booleans()):
            consumer.acknowledge(result.next_offsets)
    restarted = IngestService(config, engine)
    resume = restarted.resume_offsets([config.topics.interactions])
    again = [record for record in records if record.offset >= resume.get(record.topic_partition, 0)]
    if again:
        replay = restarted.apply(again)
        assert replay.counters.records_already_applied == len(again)
        assert replay.counters.interactions_applied == 0
        # Outputs are at least once: the letters read again are published again.
        published += [(d.source_partition, d.source_offset, d.reason) for d in replay.dead_letters]

    expected_letters = {(p, o, str(record.reason)) for (p, o), record in broken.items()}
    assert set(published) == expected_letters
    assert delivered_valid == len(stream) - len(broken)
    with UnitOfWork(engine) as uow:
        stored = uow.dead_letters.recent(limit=10 * len(records))
        actual = take_snapshot(uow)
    # Stored once each, however often read, with the reason, a one-line detail, the key and
    # a bounded copy of the bytes.
    assert sorted((d.source_partition, d.source_offset, d.reason) for d in stored) == sorted(
        expected_letters
    )
    kept_bytes = config.events.max_dead_letter_payload_bytes
    for letter in stored:
        original = broken[(letter.source_partition, letter.source_offset)]
        assert letter.detail and "\n" not in letter.detail
        assert letter.payload == (original.value or b"")[:kept_bytes]
        assert letter.key == (
            None if original.key is None else original.key[:MAX_DEAD_LETTER_KEY_BYTES]
        )
    valid = [record for record, original in zip(records, stream, strict=True) if original.valid]
    assert differences(clean_run(config, valid), actual) == []


def source_records(stream: Sequence[StreamRecord], topic: str) -> list[SourceRecord]:
    """The stream as the broker would deliver it: partitioned by key (a null key to
    partition 0), offsets counted per partition."""
    offsets = [0] * PARTITIONS
    records = []
    for record in stream:
        partition = 0 if record.key is None else zlib.crc32(record.key) % PARTITIONS
        records.append(SourceRecord(topic, partition, offsets[partition], record.key, record.value))
        offsets[partition] += 1
    return records


def batches(records: list[SourceRecord], cuts: set[int]) -> list[list[SourceRecord]]:
    bounds = [0, *sorted(cut for cut in cuts if cut < len(records)), len(records)]
    return [records[start:end] for start, end in itertools.pairwise(bounds) if end > start]


def clean_run(config: Settings, valid: list[SourceRecord]) -> StateSnapshot:
    """The state of one batch of the valid records alone, on a fresh database."""
    engine: Engine = create_memory_database()
    register_model(engine, config)
    IngestService(config, engine).apply(valid)
    with UnitOfWork(engine) as uow:
        return take_snapshot(uow)
