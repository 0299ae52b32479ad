"""The consumer's kept users (streamrec.services.user_cache) change nothing but the reads: the
same stream gives the same state, counts and recommendations as reading every user every
batch, also when another consumer writes the same users in between."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
import torch

from streamrec.config import Settings
from streamrec.services.batch import BatchResult, SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.rating_streams import rating_stream
from tests.fixtures.small_model import register_model, small_model_settings
from tests.fixtures.snapshots import differences, take_snapshot

torch.set_num_threads(1)


def _settings(cache_size: int) -> Settings:
    return small_model_settings(consumer={"user_cache_size": cache_size})


def _records(payloads: list[bytes], partitions: int) -> list[SourceRecord]:
    """Unkeyed records spread over ``partitions`` in turn: one user's events reach several
    partitions, as from a producer that does not key by user."""
    offsets = [0] * partitions
    records = []
    for number, payload in enumerate(payloads):
        partition = number % partitions
        records.append(SourceRecord("interactions", partition, offsets[partition], None, payload))
        offsets[partition] += 1
    return records


def _random_batches(records: list[SourceRecord], seed: int) -> list[list[SourceRecord]]:
    rng = random.Random(seed)
    batches, position = [], 0
    while position < len(records):
        size = rng.randint(1, 30)
        batches.append(records[position : position + size])
        position += size
    return batches


def _outcome(result: BatchResult) -> tuple:
    """What a batch did, beside the state: its counts, hits and published lists."""
    counters = result.counters
    return (
        counters.interactions_applied,
        counters.interactions_ignored,
        counters.users_updated,
        tuple(result.prequential_hits),
        tuple((message.user_id, message.items) for message in result.recommendations),
    )


def _apply_all(services: Sequence[IngestService], batches: list[list[SourceRecord]]) -> list:
    """Apply ``batches`` in order; with several services, each takes the records of its own
    partition of every batch (service k reads partition k)."""
    outcomes = []
    for batch in batches:
        for number, service in enumerate(services):
            own = [record for record in batch if record.partition % len(services) == number]
            if own:
                outcomes.append(_outcome(service.apply(own)))
    return outcomes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kept_users_give_the_same_state_counts_and_lists_as_reading_every_batch(
    seed: int,
) -> None:
    # Few users and items: most batches meet kept users, repeated ratings (a newer event
    # with the same weight), late events, duplicates and demographics.
    payloads = rating_stream(400, seed=seed, users=6, items=15, attribute_share=0.3)
    batches = _random_batches(_records(payloads, partitions=1), seed)
    results = {}
    for cache_size in (0, 10_000):
        settings = _settings(cache_size)
        engine = create_memory_database()
        register_model(engine, settings)
        service = IngestService(settings, engine)
        outcomes = _apply_all([service], batches)
        with UnitOfWork(engine) as uow:
            results[cache_size] = (outcomes, take_snapshot(uow), service.kept_users)
    (read_outcomes, read_state, none_kept), (kept_outcomes, kept_state, kept) = results.values()
    assert none_kept == 0 and kept == 6
    assert differences(read_state, kept_state, tolerance=0.0) == []
    assert kept_outcomes == read_outcomes


@pytest.mark.parametrize("seed", [0, 1])
def test_users_another_consumer_wrote_in_between_are_read_again(seed: int) -> None:
    payloads = rating_stream(300, seed=seed, users=5, items=12)
    batches = _random_batches(_records(payloads, partitions=2), seed)
    snapshots = []
    for cache_sizes in ((0,), (10_000, 10_000)):
        engine = create_memory_database()
        register_model(engine, _settings(0))
        services = [IngestService(_settings(size), engine) for size in cache_sizes]
        # One consumer per partition, each writing the same users between the other's batches.
        _apply_all(services if len(services) > 1 else services * 2, batches)
        with UnitOfWork(engine) as uow:
            snapshots.append(take_snapshot(uow))
    # Not bit for bit: each service encodes item vectors in batches of its own.
    assert differences(*snapshots, tolerance=1e-5) == []


def test_a_failed_batch_forgets_every_kept_user() -> None:
    settings = _settings(10_000)
    engine = create_memory_database()
    register_model(engine, settings)
    failing = False

    def clock() -> float:
        if failing:
            raise RuntimeError("the database went away")
        return 100.0

    service = IngestService(settings, engine, clock=clock)
    records = _records(rating_stream(40, users=4), partitions=1)
    service.apply(records[:20])
    assert service.kept_users == 4
    failing = True
    with pytest.raises(RuntimeError, match="went away"):
        service.apply(records[20:])
    assert service.kept_users == 0
