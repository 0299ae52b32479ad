"""Event ids are unique whatever the content (streamrec.services.event_ids): a reused id with
other content is dead-lettered and changes nothing, an exact duplicate is ignored, in one
batch or across batches, on SQLite and PostgreSQL; ids older than the deduplication window
are pruned in bounded deletes, and a reuse of one falls back to the (user, item) rule."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable

import pytest
import torch
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.services.batch import BatchResult, SourceRecord
from streamrec.services.event_ids import (
    PRUNE_INTERVAL_SECONDS,
    PRUNE_LIMIT,
    SECONDS_PER_DAY,
    DeduplicationWindow,
    event_fingerprint,
)
from streamrec.services.ingest import IngestService
from streamrec.storage.memory import create_memory_database
from streamrec.storage.records import ProcessedEvent
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.validation import parse_interaction
from streamrec.wire import encode_interaction
from tests.fixtures.rating_streams import rating_stream
from tests.fixtures.small_model import register_model, small_model_settings
from tests.fixtures.snapshots import differences, take_snapshot

INTERACTIONS = "interactions"
REUSED = "event_id_reused"

torch.set_num_threads(1)

ORIGINAL = InteractionEvent(
    "v-2-0", "u1", "i1", "rating", 1_000.0, value=4.0, user_attributes={"country": "de"}
)
REUSES = {
    "other item": dataclasses.replace(ORIGINAL, item_id="i2"),
    "other timestamp": dataclasses.replace(ORIGINAL, timestamp=2_000.0),
    "other user": dataclasses.replace(ORIGINAL, user_id="u2"),
    "other value": dataclasses.replace(ORIGINAL, value=1.0),
    "other type": dataclasses.replace(ORIGINAL, type="click", value=None),
    "other demographics": dataclasses.replace(ORIGINAL, user_attributes={"country": "fr"}),
}


@pytest.fixture
def settings() -> Settings:
    return small_model_settings()


class Stream:
    """Records of one partition, keyed by user id, at consecutive offsets."""

    def __init__(self, partition: int = 0) -> None:
        self._partition = partition
        self._offset = 0

    def records(self, events: Iterable[InteractionEvent]) -> list[SourceRecord]:
        records = []
        for event in events:
            records.append(
                SourceRecord(
                    INTERACTIONS,
                    self._partition,
                    self._offset,
                    event.user_id.encode(),
                    encode_interaction(event),
                )
            )
            self._offset += 1
        return records


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stored_rows(engine: Engine) -> dict[tuple[str, str], tuple[float, str, str, float]]:
    with UnitOfWork(engine) as uow:
        return take_snapshot(uow).interactions


def reasons(result: BatchResult) -> dict[str, int]:
    return dict(result.counters.dead_letters_by_reason)


@pytest.mark.parametrize("change", sorted(REUSES))
def test_a_reused_id_in_a_later_batch_is_dead_lettered_and_changes_nothing(
    engine: Engine, settings: Settings, change: str
) -> None:
    register_model(engine, settings)
    service = IngestService(settings, engine)
    stream = Stream()
    service.apply(stream.records([ORIGINAL]))
    with UnitOfWork(engine) as uow:
        before = take_snapshot(uow)

    reuse = REUSES[change]
    result = service.apply(stream.records([reuse]))

    assert reasons(result) == {REUSED: 1}
    assert (result.counters.interactions_applied, result.counters.interactions_ignored) == (0, 0)
    assert result.recommendations == []  # the user was not touched
    [letter] = result.dead_letters
    assert letter.payload == encode_interaction(reuse)
    assert letter.source_offset == 1
    assert letter.detail == (
        "event_id: 'v-2-0' was first seen with other content, for user 'u1' and item 'i1'"
    )
    with UnitOfWork(engine) as uow:
        assert differences(before, take_snapshot(uow), tolerance=0.0) == []
        assert uow.dead_letters.counts_by_reason() == {REUSED: 1}
        [first] = uow.processed_events.get_many(["v-2-0"]).values()
        assert first.fingerprint == event_fingerprint(ORIGINAL)


@pytest.mark.parametrize("change", sorted(REUSES))
def test_within_one_batch_the_first_record_of_an_id_counts(
    engine: Engine, settings: Settings, change: str
) -> None:
    register_model(engine, settings)
    service = IngestService(settings, engine)
    reuse = REUSES[change]

    result = service.apply(Stream().records([ORIGINAL, reuse, ORIGINAL]))

    assert reasons(result) == {REUSED: 1}
    assert (result.counters.interactions_applied, result.counters.interactions_ignored) == (1, 1)
    assert [letter.source_offset for letter in result.dead_letters] == [1]
    rows = {pair: row[1:] for pair, row in stored_rows(engine).items()}
    assert rows == {("u1", "i1"): ("v-2-0", "rating", 1_000.0)}
    with UnitOfWork(engine) as uow:
        assert take_snapshot(uow).attributes == {"u1": {"country": "de"}}
        assert uow.processed_events.count() == 1


def test_an_exact_duplicate_is_ignored_in_one_batch_and_across_batches(
    engine: Engine, settings: Settings
) -> None:
    register_model(engine, settings)
    service = IngestService(settings, engine)
    stream = Stream()
    # The same instant written as an ISO-8601 string is the same content.
    iso_retry = encode_interaction(ORIGINAL).replace(b"1000.0", b'"1970-01-01T00:16:40Z"')
    assert parse_interaction(iso_retry, settings.events) == ORIGINAL

    first = service.apply(stream.records([ORIGINAL, ORIGINAL]))
    with UnitOfWork(engine) as uow:
        before = take_snapshot(uow)
    retry = service.apply(
        [*stream.records([ORIGINAL]), SourceRecord(INTERACTIONS, 0, 3, b"u1", iso_retry)]
    )

    assert (first.counters.interactions_applied, first.counters.interactions_ignored) == (1, 1)
    assert (retry.counters.interactions_applied, retry.counters.interactions_ignored) == (0, 2)
    assert reasons(first) == reasons(retry) == {}
    with UnitOfWork(engine) as uow:
        assert differences(before, take_snapshot(uow), tolerance=0.0) == []
        assert uow.processed_events.count() == 1


def test_ids_are_unique_across_users_and_partitions(engine: Engine, settings: Settings) -> None:
    service = IngestService(settings, engine)
    other_user = REUSES["other user"]

    first = service.apply([*Stream(0).records([ORIGINAL]), *Stream(1).records([other_user])])
    second = service.apply(Stream(2).records([other_user]))

    assert reasons(first) == reasons(second) == {REUSED: 1}
    assert list(stored_rows(engine)) == [("u1", "i1")]


def test_a_replayed_batch_publishes_its_reused_ids_again_and_stores_nothing_twice(
    engine: Engine, settings: Settings
) -> None:
    register_model(engine, settings)
    service = IngestService(settings, engine)
    records = Stream().records([ORIGINAL, REUSES["other item"], REUSES["other user"]])
    first = service.apply(records)
    with UnitOfWork(engine) as uow:
        before = take_snapshot(uow)

    again = service.apply(records)  # a crash after the commit: read again, already applied

    assert again.counters.records_already_applied == 3
    assert [letter.source_offset for letter in again.dead_letters] == [1, 2]
    assert [letter.detail for letter in again.dead_letters] == [
        letter.detail for letter in first.dead_letters
    ]
    assert {message.user_id for message in again.recommendations} == {"u1"}
    with UnitOfWork(engine) as uow:
        assert differences(before, take_snapshot(uow), tolerance=0.0) == []
        assert uow.dead_letters.counts_by_reason() == {REUSED: 2}
        assert uow.processed_events.count() == 1


def test_ids_older_than_the_window_are_pruned_and_their_reuse_falls_back_to_the_pair_rule(
    engine: Engine,
) -> None:
    settings = small_model_settings(events={"deduplication_retention_days": 30})
    clock = Clock(now=1_000.0)
    service = IngestService(settings, engine, clock=clock)
    stream = Stream()
    service.apply(stream.records([ORIGINAL]))
    clock.now += 20 * SECONDS_PER_DAY
    later = InteractionEvent("e-later", "u3", "i3", "click", 5_000.0)
    service.apply(stream.records([later]))

    clock.now += 9 * SECONDS_PER_DAY  # 29 days after the original: still in the window
    inside = service.apply(stream.records([REUSES["other item"]]))
    clock.now += 2 * SECONDS_PER_DAY  # 31 days: this batch prunes the original's id first
    unrelated = InteractionEvent("e-unrelated", "u3", "i4", "click", 6_000.0)
    service.apply(stream.records([unrelated]))
    with UnitOfWork(engine) as uow:
        remembered = set(uow.processed_events.get_many(["v-2-0", "e-later", "e-unrelated"]))
    outside = service.apply(stream.records([REUSES["other item"]]))

    assert reasons(inside) == {REUSED: 1}
    assert remembered == {"e-later", "e-unrelated"}
    assert reasons(outside) == {}
    assert (outside.counters.interactions_applied, outside.counters.interactions_ignored) == (1, 0)
    assert {("u1", "i1"), ("u1", "i2")} <= set(stored_rows(engine))
    with UnitOfWork(engine) as uow:  # and the id is remembered again, for the new content
        [again] = uow.processed_events.get_many(["v-2-0"]).values()
    assert (again.fingerprint, again.received_at) == (
        event_fingerprint(REUSES["other item"]),
        clock.now,
    )


def test_a_prune_deletes_at_most_its_limit_oldest_first(engine: Engine) -> None:
    events = [ProcessedEvent(f"e{n}", "f" * 64, "u1", f"i{n}", float(n)) for n in range(10)]
    with UnitOfWork(engine) as uow:
        assert uow.processed_events.add_many(reversed(events)) == 10
        uow.commit()
    with UnitOfWork(engine) as uow:
        # An id stored already keeps its first row.
        uow.processed_events.add_many([events[0]._replace(fingerprint="0" * 64)])
        assert uow.processed_events.prune(received_before=5.0, limit=3) == 3
        assert uow.processed_events.prune(received_before=5.0, limit=3) == 2
        assert uow.processed_events.prune(received_before=5.0, limit=3) == 0
        uow.commit()
    with UnitOfWork(engine) as uow:
        left = uow.processed_events.get_many(event.event_id for event in events)
    assert sorted(left) == ["e5", "e6", "e7", "e8", "e9"]


def test_the_window_prunes_again_at_once_while_prunes_come_back_full() -> None:
    window = DeduplicationWindow(retention_days=1.0)
    assert window.received_before(now=3 * SECONDS_PER_DAY) == 2 * SECONDS_PER_DAY
    assert window.prune_due(now=0.0)
    window.pruned(PRUNE_LIMIT, now=10.0)
    assert window.prune_due(now=10.0)
    window.pruned(PRUNE_LIMIT - 1, now=10.0)
    assert not window.prune_due(now=10.0 + PRUNE_INTERVAL_SECONDS / 2)
    assert window.prune_due(now=10.0 + PRUNE_INTERVAL_SECONDS)


def _stream_with_reuses(seed: int) -> list[bytes]:
    """A rating stream (with its duplicate deliveries) into which some events' ids come
    again later for another item, time, value or user."""
    rng = random.Random(seed)
    payloads = rating_stream(150, seed=seed, users=6, attribute_share=0.3)
    settings = small_model_settings().events
    for _ in range(25):
        event = parse_interaction(payloads[rng.randrange(len(payloads))], settings)
        assert isinstance(event, InteractionEvent)
        reuse = rng.choice(
            [
                dataclasses.replace(event, item_id=f"i{rng.randrange(25)}"),
                dataclasses.replace(event, timestamp=event.timestamp + rng.choice([-50, 50])),
                dataclasses.replace(event, value=rng.choice([0.5, 5.0])),
                dataclasses.replace(event, user_id=f"u{rng.randrange(6)}"),
            ]
        )
        payloads.insert(rng.randrange(len(payloads) + 1), encode_interaction(reuse))
    return payloads


@pytest.mark.parametrize("seed", [0, 1])
def test_verdicts_and_state_do_not_depend_on_batching_nor_on_the_user_cache(seed: int) -> None:
    payloads = _stream_with_reuses(seed)
    records = [SourceRecord(INTERACTIONS, 0, n, None, p) for n, p in enumerate(payloads)]
    outcomes = []
    for cache_size, batch_size in [(0, len(records)), (10_000, 7), (0, 13), (10_000, 1)]:
        settings = small_model_settings(consumer={"user_cache_size": cache_size})
        engine = create_memory_database()
        register_model(engine, settings)
        service = IngestService(settings, engine)
        letters: list[int] = []
        for start in range(0, len(records), batch_size):
            result = service.apply(records[start : start + batch_size])
            letters += [letter.source_offset for letter in result.dead_letters]
        with UnitOfWork(engine) as uow:
            outcomes.append((take_snapshot(uow), letters))
    reference, reference_letters = outcomes[0]
    assert reference_letters  # the stream does reuse ids with other content
    for snapshot, letters in outcomes[1:]:
        assert letters == reference_letters
        assert differences(reference, snapshot) == []
