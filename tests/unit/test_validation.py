"""The wire contract: parse_* never raise, name the right reason, and round-trip valid events."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrec.config import EventSettings
from streamrec.events import (
    InteractionEvent,
    ItemEvent,
    RecommendationMessage,
    RecommendedItem,
    SourceEvent,
)
from streamrec.preferences import known_event_types
from streamrec.validation import Rejection, RejectionReason, parse_interaction, parse_item
from streamrec.wire import encode_interaction, encode_item
from streamrec.wire.events import (
    ITEM_FIELDS,
    LATEST_TIMESTAMP,
    MAX_FEATURES,
    MAX_LABEL_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_USER_ATTRIBUTES,
    MAX_VALUES_PER_FEATURE,
)
from streamrec.wire.recommendations import decode_recommendation, encode_recommendation

EVENT_SETTINGS = EventSettings()
KNOWN_TYPES = sorted(known_event_types(EVENT_SETTINGS))
IMPLICIT_TYPES = sorted(EVENT_SETTINGS.implicit_weights)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"

property_test = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# A JSON string that generated text can never contain (it has a control character), so it can
# be swapped for a raw JSON literal such as NaN, 1e999 or deep brackets after encoding.
RAW_MARKER = "\u0000raw"


def with_raw(document: dict[str, Any], field: str, raw_literal: str) -> bytes:
    marked = {**document, field: RAW_MARKER}
    return json.dumps(marked).replace(json.dumps(RAW_MARKER), raw_literal).encode()


def payload_of(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def assert_well_formed(rejection: object) -> Rejection:
    assert isinstance(rejection, Rejection), rejection
    assert rejection.reason in set(RejectionReason)
    assert rejection.detail and rejection.detail.isprintable(), rejection.detail
    assert len(rejection.detail) <= 300
    rejection.detail.encode("utf-8")  # dead letters must be able to carry it
    return rejection


def reason_of(result: object) -> RejectionReason:
    return assert_well_formed(result).reason


# --- strategies -------------------------------------------------------------------------------

text_characters = st.characters(exclude_categories=("Cc", "Cs"))


def safe_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(text_characters, min_size=1, max_size=max_size)


identifiers = safe_text(40)
names = safe_text(16)
timestamps = st.floats(min_value=0, max_value=LATEST_TIMESTAMP)
finite_json_numbers = st.one_of(
    st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    st.none() | st.booleans() | finite_json_numbers | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
non_text_values = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
non_number_values = st.one_of(
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def interaction_events(draw: st.DrawFn) -> InteractionEvent:
    event_type = draw(st.sampled_from(KNOWN_TYPES))
    if event_type == "rating":
        value: float | None = draw(
            st.floats(min_value=EVENT_SETTINGS.rating_min, max_value=EVENT_SETTINGS.rating_max)
        )
    else:
        value = draw(st.none() | st.floats(min_value=-1, max_value=1))
    return InteractionEvent(
        event_id=draw(identifiers),
        user_id=draw(identifiers),
        item_id=draw(identifiers),
        type=event_type,
        timestamp=draw(timestamps),
        value=value,
        user_attributes=draw(st.dictionaries(names, safe_text(20), max_size=4)),
    )


@st.composite
def item_events(draw: st.DrawFn) -> ItemEvent:
    return ItemEvent(
        item_id=draw(identifiers),
        timestamp=draw(timestamps),
        title=draw(st.none() | safe_text(60)),
        categorical=draw(
            st.dictionaries(
                names, st.lists(safe_text(12), max_size=5, unique=True).map(tuple), max_size=3
            )
        ),
        numeric=draw(
            st.dictionaries(names, st.floats(allow_nan=False, allow_infinity=False), max_size=3)
        ),
    )


@st.composite
def recommendation_messages(draw: st.DrawFn) -> RecommendationMessage:
    finite = st.floats(allow_nan=False, allow_infinity=False)
    return RecommendationMessage(
        user_id=draw(identifiers),
        items=tuple(draw(st.lists(st.builds(RecommendedItem, identifiers, finite), max_size=5))),
        model_version=draw(st.integers(0, 10**6)),
        top_clusters=tuple(draw(st.lists(st.tuples(st.integers(0, 4095), finite), max_size=5))),
        generated_at=draw(timestamps),
        source=draw(
            st.none()
            | st.builds(
                SourceEvent,
                safe_text(30),
                st.integers(0, 1023),
                st.integers(0, 2**62),
                timestamps,
            )
        ),
    )


def interaction_document(event: InteractionEvent) -> dict[str, Any]:
    return json.loads(encode_interaction(event))


def item_document(event: ItemEvent) -> dict[str, Any]:
    return json.loads(encode_item(event))


INTERACTION_REQUIRED = ["schema_version", "event_id", "user_id", "item_id", "type", "timestamp"]
INTERACTION_FIELDS = {*INTERACTION_REQUIRED, "value", "user_attributes"}
INTERACTION_IDS = ["event_id", "user_id", "item_id"]
ITEM_REQUIRED = ["schema_version", "item_id", "timestamp"]


# --- round trips ------------------------------------------------------------------------------


@property_test
@given(interaction_events())
def test_valid_interactions_round_trip(event: InteractionEvent) -> None:
    assert parse_interaction(encode_interaction(event), EVENT_SETTINGS) == event


@property_test
@given(item_events())
def test_valid_items_round_trip(event: ItemEvent) -> None:
    assert parse_item(encode_item(event), EVENT_SETTINGS) == event


@property_test
@given(recommendation_messages())
def test_recommendations_round_trip(message: RecommendationMessage) -> None:
    assert decode_recommendation(encode_recommendation(message)) == message


@property_test
@given(interaction_events(), st.text(min_size=1, max_size=10), json_values)
def test_unknown_top_level_fields_are_ignored(
    event: InteractionEvent, field: str, value: Any
) -> None:
    document = interaction_document(event)
    if field in INTERACTION_FIELDS or field in ITEM_FIELDS:
        return  # an item event's field is not unknown: it is refused as wrong_topic
    document[field] = value
    assert parse_interaction(payload_of(document), EVENT_SETTINGS) == event


# --- never raise ------------------------------------------------------------------------------


@property_test
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    for parse in (parse_interaction, parse_item):
        result = parse(payload, EVENT_SETTINGS)
        if isinstance(result, Rejection):
            assert_well_formed(result)


@property_test
@given(json_values)
def test_arbitrary_json_is_rejected_with_a_reason(value: Any) -> None:
    payload = json.dumps(value).encode()
    for parse in (parse_interaction, parse_item):
        reason = reason_of(parse(payload, EVENT_SETTINGS))
        if not isinstance(value, dict):
            assert reason is RejectionReason.NOT_AN_OBJECT


@property_test
@given(
    st.dictionaries(
        st.sampled_from(
            [*INTERACTION_REQUIRED, "value", "user_attributes", "title", "categorical", "numeric"]
        ),
        json_values | st.sampled_from(KNOWN_TYPES) | timestamps,
    )
)
def test_objects_near_the_schema_never_raise(document: dict[str, Any]) -> None:
    payload = payload_of(document)
    for parse in (parse_interaction, parse_item):
        result = parse(payload, EVENT_SETTINGS)
        if isinstance(result, Rejection):
            assert_well_formed(result)


@property_test
@given(recommendation_messages(), st.binary(max_size=40), st.integers(0, 10**6))
def test_decode_recommendation_raises_only_value_error(
    message: RecommendationMessage, garbage: bytes, position: int
) -> None:
    payload = encode_recommendation(message)
    cut = position % (len(payload) + 1)
    try:
        decode_recommendation(payload[:cut] + garbage)
    except ValueError as error:
        assert "\n" not in str(error)


# --- targeted mutations of valid events -------------------------------------------------------


@property_test
@given(interaction_events(), st.sampled_from(INTERACTION_REQUIRED), st.booleans())
def test_missing_interaction_field(event: InteractionEvent, field: str, as_null: bool) -> None:
    document = interaction_document(event)
    if as_null:
        document[field] = None
    else:
        del document[field]
    result = parse_interaction(payload_of(document), EVENT_SETTINGS)
    assert reason_of(result) is RejectionReason.MISSING_FIELD
    assert result.detail.startswith(f"{field}:")


@property_test
@given(item_events(), st.sampled_from(ITEM_REQUIRED))
def test_missing_item_field(event: ItemEvent, field: str) -> None:
    document = item_document(event)
    del document[field]
    assert reason_of(parse_item(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.MISSING_FIELD
    )


@property_test
@given(interaction_events(), st.data())
def test_wrong_type_in_interaction(event: InteractionEvent, data: st.DataObject) -> None:
    wrong_values = {
        "event_id": non_text_values,
        "user_id": non_text_values,
        "item_id": non_text_values,
        "type": non_text_values | st.integers(),
        "timestamp": non_number_values.filter(lambda value: not isinstance(value, str)),
        "value": non_number_values,
        "schema_version": st.text(max_size=3)
        | st.booleans()
        | st.floats(allow_nan=False, allow_infinity=False),
        "user_attributes": st.text(max_size=3) | finite_json_numbers | st.booleans(),
    }
    field = data.draw(st.sampled_from(sorted(wrong_values)))
    document = interaction_document(event)
    document[field] = data.draw(wrong_values[field])
    result = parse_interaction(payload_of(document), EVENT_SETTINGS)
    assert reason_of(result) is RejectionReason.WRONG_TYPE
    assert result.detail.startswith(f"{field}:")


@property_test
@given(interaction_events(), names, st.sampled_from([True, 2.5, [1], {"nested": "x"}]))
def test_user_attributes_must_be_flat(event: InteractionEvent, name: str, value: Any) -> None:
    document = interaction_document(event)
    document["user_attributes"] = {name: value}
    result = parse_interaction(payload_of(document), EVENT_SETTINGS)
    assert reason_of(result) is RejectionReason.WRONG_TYPE
    assert result.detail.startswith("user_attributes[")


@property_test
@given(item_events(), st.data())
def test_wrong_type_in_item(event: ItemEvent, data: st.DataObject) -> None:
    wrong_values = {
        "item_id": non_text_values,
        "title": non_text_values | st.integers(),
        "categorical": st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=2),
        "numeric": st.text(max_size=3) | st.lists(st.integers(), max_size=2),
    }
    field = data.draw(st.sampled_from(sorted(wrong_values)))
    document = item_document(event)
    document[field] = data.draw(wrong_values[field])
    assert reason_of(parse_item(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.WRONG_TYPE
    )


@property_test
@given(item_events(), names, non_number_values)
def test_numeric_features_must_be_numbers(event: ItemEvent, name: str, value: Any) -> None:
    document = item_document(event)
    document["numeric"] = {name: value}
    assert reason_of(parse_item(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.WRONG_TYPE
    )


@property_test
@given(
    interaction_events(),
    # Anywhere, even in an unknown field that would otherwise be ignored.
    st.sampled_from(["timestamp", "value", "extension"]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[1, NaN]"]),
)
def test_non_finite_numbers(event: InteractionEvent, field: str, literal: str) -> None:
    payload = with_raw(interaction_document(event), field, literal)
    assert reason_of(parse_interaction(payload, EVENT_SETTINGS)) is RejectionReason.NOT_FINITE


@property_test
@given(item_events(), st.sampled_from(["NaN", "-Infinity", "1e400"]))
def test_non_finite_item_numbers(event: ItemEvent, literal: str) -> None:
    document = item_document(event)
    document["numeric"] = {"year": RAW_MARKER}
    payload = json.dumps(document).replace(json.dumps(RAW_MARKER), literal).encode()
    assert reason_of(parse_item(payload, EVENT_SETTINGS)) is RejectionReason.NOT_FINITE


@property_test
@given(
    interaction_events(),
    st.one_of(
        st.floats(max_value=-1e-6, allow_infinity=False),
        st.floats(min_value=LATEST_TIMESTAMP + 1, allow_infinity=False),
        st.integers(min_value=int(LATEST_TIMESTAMP) + 1),
        st.integers(max_value=-1),
    ),
)
def test_timestamp_out_of_range(event: InteractionEvent, timestamp: float) -> None:
    document = interaction_document(event)
    document["timestamp"] = timestamp
    result = parse_interaction(payload_of(document), EVENT_SETTINGS)
    assert reason_of(result) is RejectionReason.OUT_OF_RANGE
    assert result.detail.startswith("timestamp:")


@property_test
@given(
    interaction_events(),
    st.one_of(
        st.floats(max_value=-1.0, exclude_max=True, allow_infinity=False),
        st.floats(min_value=5.0, exclude_min=True, allow_infinity=False),
        st.integers(min_value=6),
    ),
)
def test_value_out_of_range(event: InteractionEvent, value: float) -> None:
    # -1..5 excludes no valid value of either scale: ratings live in [0.5, 5], implicit in [-1, 1].
    document = interaction_document(event)
    document["value"] = value
    assert reason_of(parse_interaction(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.OUT_OF_RANGE
    )


@property_test
@given(interaction_events(), st.integers(4400, 6000))
def test_integer_literal_with_too_many_digits(event: InteractionEvent, digits: int) -> None:
    payload = with_raw(interaction_document(event), "value", "9" * digits)
    assert reason_of(parse_interaction(payload, EVENT_SETTINGS)) is RejectionReason.OUT_OF_RANGE


@property_test
@given(
    interaction_events(),
    st.sampled_from(INTERACTION_IDS),
    st.one_of(
        st.text(text_characters, min_size=EVENT_SETTINGS.max_id_length + 1, max_size=400),
        st.integers(min_value=10**EVENT_SETTINGS.max_id_length),
        st.just(""),
        st.tuples(identifiers, st.characters(categories=("Cc",))).map("".join),
    ),
)
def test_invalid_ids(event: InteractionEvent, field: str, identifier: Any) -> None:
    document = interaction_document(event)
    document[field] = identifier
    result = parse_interaction(payload_of(document), EVENT_SETTINGS)
    assert reason_of(result) is RejectionReason.INVALID_ID
    assert result.detail.startswith(f"{field}:")


@property_test
@given(interaction_events(), st.sampled_from(INTERACTION_IDS), st.integers(-(10**9), 10**9))
def test_integer_ids_become_strings(event: InteractionEvent, field: str, number: int) -> None:
    document = interaction_document(event)
    document[field] = number
    result = parse_interaction(payload_of(document), EVENT_SETTINGS)
    assert isinstance(result, InteractionEvent)
    assert getattr(result, field) == str(number)


@property_test
@given(interaction_events(), st.integers(2_000, 9_000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting(event: InteractionEvent, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    payload = with_raw(interaction_document(event), "extension", opener * depth + closer * depth)
    assert reason_of(parse_interaction(payload, EVENT_SETTINGS)) is (
        RejectionReason.TOO_DEEPLY_NESTED
    )


@property_test
@given(
    interaction_events(),
    st.integers(min_value=0),
    st.sampled_from([b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf5\x80\x80\x80"]),
)
def test_invalid_utf8(event: InteractionEvent, position: int, sequence: bytes) -> None:
    payload = encode_interaction(event)
    cut = position % (len(payload) + 1)
    broken = payload[:cut] + sequence + payload[cut:]
    assert reason_of(parse_interaction(broken, EVENT_SETTINGS)) is RejectionReason.INVALID_UTF8


@property_test
@given(interaction_events(), st.text(max_size=20).filter(lambda name: name not in KNOWN_TYPES))
def test_unknown_event_type(event: InteractionEvent, event_type: str) -> None:
    document = interaction_document(event)
    document["type"] = event_type
    assert reason_of(parse_interaction(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.UNKNOWN_EVENT_TYPE
    )


@property_test
@given(interaction_events(), st.integers().filter(lambda version: version != 1))
def test_unsupported_schema_version(event: InteractionEvent, version: int) -> None:
    document = interaction_document(event)
    document["schema_version"] = version
    del document["event_id"]  # the version is judged first: a v2 event may lack v1 fields
    assert reason_of(parse_interaction(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.UNSUPPORTED_SCHEMA_VERSION
    )


@property_test
@given(interaction_events(), st.data())
def test_duplicate_keys(event: InteractionEvent, data: st.DataObject) -> None:
    document = interaction_document(event)
    key = data.draw(st.sampled_from(sorted(document)))
    repeated = json.dumps(document)[:-1] + f", {json.dumps(key)}: {json.dumps(document[key])}}}"
    assert reason_of(parse_interaction(repeated.encode(), EVENT_SETTINGS)) is (
        RejectionReason.DUPLICATE_KEY
    )


@property_test
@given(interaction_events(), st.integers(1, 1000))
def test_payload_too_large(event: InteractionEvent, excess: int) -> None:
    payload = encode_interaction(event)
    padded = payload + b" " * (EVENT_SETTINGS.max_event_bytes - len(payload) + excess)
    assert reason_of(parse_interaction(padded, EVENT_SETTINGS)) is (
        RejectionReason.PAYLOAD_TOO_LARGE
    )


@property_test
@given(
    interaction_events(),
    st.one_of(
        st.datetimes().map(lambda moment: moment.isoformat()),  # no timezone
        st.sampled_from(["yesterday", "2024-13-01T00:00:00Z", "1700000000", "", "2024-01-01"]),
    ),
)
def test_invalid_timestamp_text(event: InteractionEvent, text: str) -> None:
    document = interaction_document(event)
    document["timestamp"] = text
    assert reason_of(parse_interaction(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.INVALID_TIMESTAMP
    )


@property_test
@given(interaction_events(), st.data())
def test_oversized_user_attributes(event: InteractionEvent, data: st.DataObject) -> None:
    too_many = {f"a{index}": "x" for index in range(MAX_USER_ATTRIBUTES + 1)}
    too_long = {"occupation": "x" * (MAX_LABEL_LENGTH + 1)}
    document = interaction_document(event)
    document["user_attributes"] = data.draw(st.sampled_from([too_many, too_long]))
    assert reason_of(parse_interaction(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.TOO_LONG
    )


@property_test
@given(item_events(), st.data())
def test_oversized_item_features(event: ItemEvent, data: st.DataObject) -> None:
    oversized = {
        "title": "t" * (MAX_TITLE_LENGTH + 1),
        "categorical": {f"f{index}": [] for index in range(MAX_FEATURES + 1)},
        "numeric": {"year": 1995, **{f"n{index}": 1 for index in range(MAX_FEATURES)}},
    }
    oversized_values = {"genres": [str(index) for index in range(MAX_VALUES_PER_FEATURE + 1)]}
    field = data.draw(st.sampled_from([*sorted(oversized), "values"]))
    document = item_document(event)
    if field == "values":
        document["categorical"] = oversized_values
    else:
        document[field] = oversized[field]
    assert reason_of(parse_item(payload_of(document), EVENT_SETTINGS)) is (RejectionReason.TOO_LONG)


@property_test
@given(
    interaction_events(),
    st.one_of(st.just(""), st.tuples(names, st.characters(categories=("Cc",))).map("".join)),
)
def test_attribute_names_must_be_clean_text(event: InteractionEvent, name: str) -> None:
    document = interaction_document(event)
    document["user_attributes"] = {name: "x"}
    assert reason_of(parse_interaction(payload_of(document), EVENT_SETTINGS)) is (
        RejectionReason.INVALID_TEXT
    )


# --- examples: one per reason, and the normalisations -----------------------------------------


def interaction_json(**fields: Any) -> bytes:
    document = {
        "schema_version": 1,
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "type": "click",
        "timestamp": 1_700_000_000,
        **fields,
    }
    return json.dumps({key: value for key, value in document.items() if value != "<drop>"}).encode()


REASON_EXAMPLES: list[tuple[RejectionReason, bytes | None]] = [
    (RejectionReason.EMPTY_PAYLOAD, None),
    (RejectionReason.EMPTY_PAYLOAD, b""),
    (RejectionReason.PAYLOAD_TOO_LARGE, interaction_json(pad=" " * 70_000)),
    (RejectionReason.INVALID_UTF8, b'{"schema_version": 1, "user_id": "\xc3"}'),
    (RejectionReason.INVALID_JSON, b'{"schema_version": 1,}'),
    (RejectionReason.INVALID_JSON, b"\xef\xbb\xbf{}"),  # a byte-order mark is not JSON
    (RejectionReason.DUPLICATE_KEY, b'{"user_id": "a", "user_id": "b"}'),
    (RejectionReason.TOO_DEEPLY_NESTED, b"[" * 5000 + b"]" * 5000),
    (RejectionReason.NOT_AN_OBJECT, b'"an event"'),
    (RejectionReason.UNSUPPORTED_SCHEMA_VERSION, interaction_json(schema_version=2)),
    (RejectionReason.MISSING_FIELD, interaction_json(user_id="<drop>")),
    (RejectionReason.MISSING_FIELD, interaction_json(type="rating")),
    (RejectionReason.WRONG_TYPE, interaction_json(value=True)),
    (RejectionReason.WRONG_TYPE, interaction_json(schema_version="1")),
    (RejectionReason.WRONG_TYPE, interaction_json(user_attributes={"age": {"min": 25}})),
    (RejectionReason.NOT_FINITE, interaction_json(value=float("nan"))),
    (RejectionReason.NOT_FINITE, with_raw(json.loads(interaction_json()), "timestamp", "-1e999")),
    (RejectionReason.OUT_OF_RANGE, interaction_json(type="rating", value=5.5)),
    (RejectionReason.OUT_OF_RANGE, interaction_json(timestamp=1_700_000_000_000)),
    (RejectionReason.TOO_LONG, interaction_json(user_attributes={"country": "x" * 300})),
    (RejectionReason.INVALID_ID, interaction_json(user_id="")),
    (RejectionReason.INVALID_ID, interaction_json(item_id="i\x00")),
    (RejectionReason.INVALID_ID, interaction_json(event_id="e" * 257)),
    (RejectionReason.INVALID_TEXT, interaction_json(user_attributes={"gender": "\ud800"})),
    (RejectionReason.INVALID_TIMESTAMP, interaction_json(timestamp="2024-05-01T12:00:00")),
    (RejectionReason.UNKNOWN_EVENT_TYPE, interaction_json(type="Click")),
    (RejectionReason.WRONG_TOPIC, interaction_json(categorical={"genres": ["Drama"]})),
]
# Reasons that need the message's key besides its payload: (reason, payload, key).
KEYED_REASON_EXAMPLES: list[tuple[RejectionReason, bytes, bytes]] = [
    (RejectionReason.KEY_MISMATCH, interaction_json(user_id="u1"), b"u2"),
]


@pytest.mark.parametrize(("reason", "payload"), REASON_EXAMPLES)
def test_reason_examples(reason: RejectionReason, payload: bytes | None) -> None:
    assert reason_of(parse_interaction(payload, EVENT_SETTINGS)) is reason


@pytest.mark.parametrize(("reason", "payload", "key"), KEYED_REASON_EXAMPLES)
def test_keyed_reason_examples(reason: RejectionReason, payload: bytes, key: bytes) -> None:
    assert reason_of(parse_interaction(payload, EVENT_SETTINGS, key=key)) is reason


def test_every_reason_has_an_example() -> None:
    examples = {reason for reason, _ in REASON_EXAMPLES}
    examples |= {reason for reason, _, _ in KEYED_REASON_EXAMPLES}
    # Found against the stored event ids, not by parsing: test_ingest_event_ids.py has it.
    examples.add(RejectionReason.EVENT_ID_REUSED)
    assert examples == set(RejectionReason)


def test_details_name_the_field() -> None:
    result = parse_interaction(interaction_json(timestamp=[1]), EVENT_SETTINGS)
    assert result == Rejection(
        RejectionReason.WRONG_TYPE,
        "timestamp: must be epoch seconds or an ISO-8601 string with a timezone, got array",
    )


def test_non_bytes_payload_is_rejected() -> None:
    text_payload: Any = "{}"
    assert reason_of(parse_interaction(text_payload, EVENT_SETTINGS)) is RejectionReason.WRONG_TYPE


@property_test
@given(
    interaction_events(),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 1, 1)),
    st.integers(-23 * 60, 23 * 60),
)
def test_iso_timestamps_are_epoch_seconds(
    event: InteractionEvent, moment: datetime, offset_minutes: int
) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    document = interaction_document(event)
    document["timestamp"] = aware.isoformat()
    result = parse_interaction(payload_of(document), EVENT_SETTINGS)
    assert isinstance(result, InteractionEvent)
    assert result.timestamp == aware.timestamp()


def test_iso_timestamps_with_offsets_are_the_same_instant() -> None:
    utc = parse_interaction(interaction_json(timestamp="2024-05-01T10:00:00Z"), EVENT_SETTINGS)
    paris = parse_interaction(
        interaction_json(timestamp="2024-05-01T12:00:00+02:00"), EVENT_SETTINGS
    )
    assert isinstance(utc, InteractionEvent) and isinstance(paris, InteractionEvent)
    assert utc.timestamp == paris.timestamp == 1_714_557_600.0


def test_limits_follow_the_settings() -> None:
    strict = EventSettings(max_id_length=3, rating_min=1, rating_max=10, implicit_weights={})
    assert reason_of(parse_interaction(interaction_json(user_id="u1234"), strict)) is (
        RejectionReason.INVALID_ID
    )
    assert reason_of(parse_interaction(interaction_json(), strict)) is (
        RejectionReason.UNKNOWN_EVENT_TYPE
    )
    rated = parse_interaction(interaction_json(type="rating", value=9), strict)
    assert isinstance(rated, InteractionEvent) and rated.value == 9.0


def test_null_attributes_mean_unknown() -> None:
    result = parse_interaction(
        interaction_json(user_attributes={"age": None, "occupation": 12}), EVENT_SETTINGS
    )
    assert isinstance(result, InteractionEvent)
    assert result.user_attributes == {"occupation": "12"}


def test_categorical_values_are_a_set_in_first_seen_order() -> None:
    payload = json.dumps(
        {
            "schema_version": 1,
            "item_id": 7,
            "timestamp": 0,
            "categorical": {"genres": ["Drama", "Comedy", "Drama"], "tags": None},
        }
    ).encode()
    result = parse_item(payload, EVENT_SETTINGS)
    assert isinstance(result, ItemEvent)
    assert result.item_id == "7"
    assert result.categorical == {"genres": ("Drama", "Comedy")}


def test_encoding_refuses_non_finite_numbers() -> None:
    event = InteractionEvent("e", "u", "i", "click", float("nan"))
    with pytest.raises(ValueError):
        encode_interaction(event)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"schema_version": 1, "user_id": "u", "items": [{"item_id": "i"}]}',
        b'{"schema_version": 1, "user_id": "u", "items": [], "model_version": true}',
        b'{"schema_version": 2}',
    ],
)
def test_decode_recommendation_explains_bad_input(payload: bytes) -> None:
    with pytest.raises(ValueError, match="invalid recommendation message: "):
        decode_recommendation(payload)


# --- the documentation cannot drift -----------------------------------------------------------


def test_every_reason_is_documented() -> None:
    section = DOCS.read_text(encoding="utf-8").split("## Rejection reasons", 1)[1].split("\n## ")[0]
    table_codes = set(re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|", section, re.MULTILINE))
    assert table_codes == {str(reason) for reason in RejectionReason}


def json_examples(heading: str) -> list[bytes]:
    section = DOCS.read_text(encoding="utf-8").split(f"## {heading}", 1)[1].split("\n## ")[0]
    return [block.encode() for block in re.findall(r"```json\n(.*?)```", section, re.DOTALL)]


def test_documented_examples_are_valid() -> None:
    interactions = json_examples("Interaction events")
    items = json_examples("Item events")
    recommendations = json_examples("Recommendation messages")
    assert interactions and items and recommendations
    for payload in interactions:
        assert isinstance(parse_interaction(payload, EVENT_SETTINGS), InteractionEvent)
    for payload in items:
        assert isinstance(parse_item(payload, EVENT_SETTINGS), ItemEvent)
    for payload in recommendations:
        assert decode_recommendation(payload).user_id == "42"
