"""The fallback recorder: what a new user was served before each batch, read from the real
ingest state (in-memory SQLite), as `streamrec recommend` serves it."""

from __future__ import annotations

import time

import torch
from sqlalchemy import Engine

from streamrec.benchmarks.served_fallback import FallbackList, FallbackRecorder
from streamrec.events import InteractionEvent
from streamrec.services.batch import SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.services.recommending import current_recommendations
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire import encode_interaction
from tests.fixtures.small_model import register_model, small_model_settings

torch.set_num_threads(1)

# Every batch refreshes the shortlists it changed, and the statistics hold exact memberships,
# so that each of these few events changes the fallback.
SETTINGS = small_model_settings(
    {"statistics_membership_precision": 0.0}, {"shortlist_refresh_seconds": 0.0}
)


def _records(first_offset: int, count: int, partition: int = 0) -> list[SourceRecord]:
    records = []
    for offset in range(first_offset, first_offset + count):
        event = InteractionEvent(
            f"e{partition}-{offset}",
            f"u{offset % 4}",
            f"i{offset % 7}",
            "rating",
            value=4.0 + offset % 2,
            timestamp=1_000.0 + offset,
        )
        user = event.user_id.encode()
        records.append(
            SourceRecord(
                SETTINGS.topics.interactions, partition, offset, user, encode_interaction(event)
            )
        )
    return records


def _served_to_a_new_user(engine: Engine) -> tuple[str, ...]:
    with UnitOfWork(engine) as uow:
        message = current_recommendations(uow, "someone new", SETTINGS.serving, time.time())
    assert message is not None
    return tuple(item.item_id for item in message.items)


def test_each_batch_is_given_the_fallback_from_before_it() -> None:
    engine = create_memory_database()
    register_model(engine, SETTINGS)
    service = IngestService(SETTINGS, engine)
    recorder = FallbackRecorder(SETTINGS, engine)

    first_batch = _records(0, 6) + _records(0, 2, partition=1)
    recorder.on_batch(service.apply(first_batch), None, first_batch)
    after_first = _served_to_a_new_user(engine)
    second_batch = _records(6, 5)
    recorder.on_batch(service.apply(second_batch), None, second_batch)
    after_second = _served_to_a_new_user(engine)

    assert after_first and after_second != after_first
    # Before the first batch no cluster had statistics: a new user was served nothing. The
    # second batch was served what the first one left.
    assert recorder.drain() == [
        FallbackList(0, 0, 5, ()),
        FallbackList(1, 0, 1, ()),
        FallbackList(0, 6, 10, after_first),
    ]
    assert recorder.drain() == []
    # A batch starting now would be served what `streamrec recommend` serves a new user.
    assert recorder.current == after_second
