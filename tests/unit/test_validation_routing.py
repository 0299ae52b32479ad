"""Routing rules: a key names the body's user or item, and each topic takes its own events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrec.config import EventSettings, Settings
from streamrec.events import InteractionEvent, ItemEvent
from streamrec.services.batch import SourceRecord
from streamrec.services.triage import triage
from streamrec.validation import Rejection, RejectionReason, parse_interaction, parse_item
from streamrec.wire import encode_interaction, encode_item

EVENTS = EventSettings()
CLICK = InteractionEvent("e1", "u1", "i1", "click", 1_700_000_000.0)
MOVIE = ItemEvent("i1", 1.0, "Toy Story", {"genres": ("Animation",)}, {"year": 1995.0})

property_test = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ids = st.text(
    st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20
) | st.integers(0, 10**12).map(str)


def rejection(result: object) -> Rejection:
    assert isinstance(result, Rejection), result
    return result


# --- keys -------------------------------------------------------------------------------------


@property_test
@given(ids)
def test_a_key_equal_to_the_user_id_is_accepted(user_id: str) -> None:
    event = InteractionEvent("e1", user_id, "i1", "click", 1_700_000_000.0)
    assert parse_interaction(encode_interaction(event), EVENTS, key=user_id.encode()) == event


@property_test
@given(ids, ids)
def test_a_key_naming_another_user_is_refused(user_id: str, key: str) -> None:
    event = InteractionEvent("e1", user_id, "i1", "click", 1_700_000_000.0)
    result = parse_interaction(encode_interaction(event), EVENTS, key=key.encode())
    if key == user_id:
        assert result == event
    else:
        assert rejection(result).reason is RejectionReason.KEY_MISMATCH
        assert rejection(result).detail.startswith("key: ")


def test_an_integer_user_id_matches_its_decimal_key() -> None:
    payload = json.dumps({**json.loads(encode_interaction(CLICK)), "user_id": 42}).encode()
    result = parse_interaction(payload, EVENTS, key=b"42")
    assert isinstance(result, InteractionEvent) and result.user_id == "42"


def test_a_message_without_a_key_is_judged_by_its_body() -> None:
    assert parse_interaction(encode_interaction(CLICK), EVENTS, key=None) == CLICK
    assert parse_item(encode_item(MOVIE), EVENTS, key=None) == MOVIE


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        (b"u2", "'u2'"),
        (b"", "''"),  # an empty key is a key, and no id is empty
        (b"U1", "'U1'"),  # ids are case-sensitive
        (b"u1 ", "'u1 '"),
        (b"\xff\xfe", "'\\\\xff\\\\xfe'"),  # not UTF-8: shown escaped
    ],
)
def test_key_mismatch_detail_names_the_key_and_the_user(key: bytes, shown: str) -> None:
    result = rejection(parse_interaction(encode_interaction(CLICK), EVENTS, key=key))
    assert result == Rejection(
        RejectionReason.KEY_MISMATCH, f"key: {shown} is not the user_id 'u1'"
    )


def test_a_huge_key_gives_a_short_detail() -> None:
    result = rejection(parse_interaction(encode_interaction(CLICK), EVENTS, key=b"k" * 10**6))
    assert result.reason is RejectionReason.KEY_MISMATCH
    assert len(result.detail) < 120


def test_item_keys_must_be_the_item_id() -> None:
    assert parse_item(encode_item(MOVIE), EVENTS, key=b"i1") == MOVIE
    result = rejection(parse_item(encode_item(MOVIE), EVENTS, key=b"i2"))
    assert result == Rejection(RejectionReason.KEY_MISMATCH, "key: 'i2' is not the item_id 'i1'")


def test_the_key_is_checked_after_the_body() -> None:
    # An invalid body keeps its own reason, whatever its key.
    payload = encode_interaction(CLICK).replace(b'"click"', b'"Click"')
    result = rejection(parse_interaction(payload, EVENTS, key=b"someone else"))
    assert result.reason is RejectionReason.UNKNOWN_EVENT_TYPE


# --- topics -----------------------------------------------------------------------------------


@property_test
@given(
    st.builds(
        InteractionEvent,
        event_id=ids,
        user_id=ids,
        item_id=ids,
        type=st.sampled_from(["click", "like", "view"]),
        timestamp=st.floats(0, 4e9),
    )
)
def test_an_interaction_on_the_items_topic_is_refused(event: InteractionEvent) -> None:
    result = rejection(parse_item(encode_interaction(event), EVENTS, key=event.item_id.encode()))
    assert result == Rejection(
        RejectionReason.WRONG_TOPIC,
        "event_id: is a field of interaction events; this topic takes item events",
    )


@pytest.mark.parametrize("field", ["title", "categorical", "numeric"])
def test_an_item_with_features_on_the_interactions_topic_is_refused(field: str) -> None:
    document = {"schema_version": 1, "item_id": "i1", "timestamp": 1.0}
    document[field] = json.loads(encode_item(MOVIE))[field]
    result = rejection(parse_interaction(json.dumps(document).encode(), EVENTS))
    assert result == Rejection(
        RejectionReason.WRONG_TOPIC,
        f"{field}: is a field of item events; this topic takes interaction events",
    )


@pytest.mark.parametrize("field", ["event_id", "user_id", "type", "value", "user_attributes"])
def test_any_interaction_field_marks_an_item_message_as_misrouted(field: str) -> None:
    document: dict[str, Any] = json.loads(encode_item(MOVIE))
    document[field] = None  # present, even null: the name alone is the other type's
    result = rejection(parse_item(json.dumps(document).encode(), EVENTS))
    assert result.reason is RejectionReason.WRONG_TOPIC


def test_a_bare_item_on_the_interactions_topic_misses_the_interaction_fields() -> None:
    # Nothing in {schema_version, item_id, timestamp} belongs to items only.
    payload = b'{"schema_version": 1, "item_id": "i1", "timestamp": 1}'
    result = rejection(parse_interaction(payload, EVENTS))
    assert result == Rejection(RejectionReason.MISSING_FIELD, "event_id: is required")


def test_the_topic_is_checked_after_the_schema_version() -> None:
    payload = encode_item(MOVIE).replace(b'"schema_version":1', b'"schema_version":2')
    result = rejection(parse_interaction(payload, EVENTS))
    assert result.reason is RejectionReason.UNSUPPORTED_SCHEMA_VERSION


# --- the consumer's triage --------------------------------------------------------------------


def test_triage_dead_letters_misrouted_and_mis_keyed_records() -> None:
    settings = Settings()
    interactions, items = settings.topics.interactions, settings.topics.items
    records = [
        SourceRecord(interactions, 0, 0, b"u1", encode_interaction(CLICK)),
        SourceRecord(interactions, 0, 1, b"u2", encode_interaction(CLICK)),
        SourceRecord(interactions, 0, 2, None, encode_interaction(CLICK)),
        SourceRecord(items, 0, 0, b"i1", encode_item(MOVIE)),
        SourceRecord(items, 0, 1, b"i1", encode_interaction(CLICK)),
        SourceRecord(interactions, 0, 3, b"i1", encode_item(MOVIE)),
    ]
    batch = triage(records, settings, received_at=1.0)
    assert [accepted.record.offset for accepted in batch.interactions] == [0, 2]
    assert [accepted.item for accepted in batch.items] == [MOVIE]
    assert [
        (letter.source_topic, letter.source_offset, letter.reason, letter.key)
        for letter in batch.dead_letters
    ] == [
        (interactions, 1, "key_mismatch", b"u2"),
        (items, 1, "wrong_topic", b"i1"),
        (interactions, 3, "wrong_topic", b"i1"),
    ]
