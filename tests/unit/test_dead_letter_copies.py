"""Dead letters keep a bounded copy of the rejected record, with the whole payload's size and
SHA-256, in the batch's result (the dead-letter topic) and in the table alike."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.services.batch import SourceRecord
from streamrec.services.dead_letters import MAX_DEAD_LETTER_KEY_BYTES, dead_letter_of
from streamrec.services.ingest import IngestService
from streamrec.storage import UnitOfWork
from streamrec.storage.memory import create_memory_database
from streamrec.wire import encode_interaction

SETTINGS = Settings()
KEPT = SETTINGS.events.max_dead_letter_payload_bytes
INTERACTIONS = SETTINGS.topics.interactions


def oversized_event(size: int) -> bytes:
    """A valid interaction event padded with spaces to ``size`` bytes."""
    payload = encode_interaction(InteractionEvent("e-big", "u1", "i1", "click", 1.0))
    return payload[:-1] + b" " * (size - len(payload)) + b"}"


def test_the_default_keeps_whole_every_payload_small_enough_to_be_an_event() -> None:
    assert SETTINGS.events.max_event_bytes == KEPT


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 300))
def test_a_letter_keeps_a_prefix_and_describes_the_whole(payload: bytes, kept: int) -> None:
    record = SourceRecord(INTERACTIONS, 1, 9, b"u1", payload)
    letter = dead_letter_of(
        record, "invalid_json", "payload: x", received_at=5.0, max_payload_bytes=kept
    )
    assert letter.payload == payload[:kept]
    assert letter.payload_size == len(payload) == letter.original_size
    assert letter.payload_sha256 == hashlib.sha256(payload).hexdigest() == letter.original_sha256
    assert letter.truncated is (len(payload) > kept)
    assert (letter.detail == "payload: x") is not letter.truncated
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        INTERACTIONS,
        1,
        9,
    )
    assert (letter.key, letter.received_at) == (b"u1", 5.0)


def test_a_cut_letter_says_so_in_its_detail_with_the_hash() -> None:
    payload = oversized_event(1_100_000)
    record = SourceRecord(INTERACTIONS, 0, 3, b"u1", payload)
    letter = dead_letter_of(
        record, "payload_too_large", "payload: too big", received_at=1.0, max_payload_bytes=KEPT
    )
    digest = hashlib.sha256(payload).hexdigest()
    assert letter.detail == (
        f"payload: too big (dead letter keeps the first {KEPT} of 1100000 bytes, sha256 {digest})"
    )


def test_a_tombstone_is_an_empty_payload() -> None:
    letter = dead_letter_of(
        SourceRecord(INTERACTIONS, 0, 0, b"u1", None),
        "empty_payload",
        "p",
        received_at=1.0,
        max_payload_bytes=KEPT,
    )
    assert (letter.payload, letter.payload_size, letter.truncated) == (b"", 0, False)


def test_a_huge_key_is_cut_too() -> None:
    record = SourceRecord(INTERACTIONS, 0, 0, b"k" * 2_000_000, b"{")
    letter = dead_letter_of(
        record, "invalid_json", "payload: x", received_at=1.0, max_payload_bytes=KEPT
    )
    assert letter.key == b"k" * MAX_DEAD_LETTER_KEY_BYTES
    assert letter.detail == (
        f"payload: x (key cut to its first {MAX_DEAD_LETTER_KEY_BYTES} of 2000000 bytes)"
    )


@pytest.mark.parametrize("size", [1_100_000, 10_000_000])
def test_an_oversized_record_is_stored_and_returned_as_a_bounded_copy(size: int) -> None:
    engine = create_memory_database()
    service = IngestService(SETTINGS, engine, clock=lambda: 50.0)
    payload = oversized_event(size)
    valid = encode_interaction(InteractionEvent("e1", "u1", "i2", "click", 2.0))
    result = service.apply(
        [
            SourceRecord(INTERACTIONS, 0, 0, b"u1", payload),
            SourceRecord(INTERACTIONS, 0, 1, b"u1", valid),
        ]
    )
    [letter] = result.dead_letters
    assert letter.reason == "payload_too_large"
    assert letter.payload == payload[:KEPT]
    assert (letter.payload_size, letter.payload_sha256) == (
        size,
        hashlib.sha256(payload).hexdigest(),
    )
    assert result.counters.interactions_applied == 1
    with UnitOfWork(engine) as uow:
        [stored] = uow.dead_letters.recent()
    assert stored.payload == payload[:KEPT]
    assert stored.detail == letter.detail
    assert hashlib.sha256(payload).hexdigest() in (stored.detail or "")
