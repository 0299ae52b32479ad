"""Properties of the declared wire messages over random payloads: every parser returns a
message or a Rejection with a known reason and never raises, msgspec's fast path decides as
the strict decoder would (repeated keys included), and every valid message round-trips."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrec.config import EventSettings
from streamrec.events import InteractionEvent, ItemEvent
from streamrec.storage.records import TrainingTrigger
from streamrec.validation import Rejection, RejectionReason, parse_interaction, parse_item
from streamrec.validation.decoding import InvalidEvent, decode_object, strictly_decoded
from streamrec.wire import encode_event
from streamrec.wire.control import (
    ModelActivated,
    RunFinished,
    RunStarted,
    TrainCommand,
    encode_control,
    parse_control,
)
from streamrec.wire.recommendations import decode_recommendation

EVENTS = EventSettings()
property_test = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FIELD_NAMES = [
    *("schema_version", "event_id", "user_id", "item_id", "type", "value", "timestamp"),
    *("user_attributes", "title", "categorical", "numeric", "request_id", "trigger", "at"),
    *("requested_at", "run_id", "version", "items", "top_clusters", "source", "a:b", "\\u003a"),
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["rating", "click", "train", "2024-05-01T12:00:00Z", "e:1", "\ud800"]),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=15,
)
# Raw JSON fragments that json.dumps never writes: non-finite literals, escapes, deep nesting.
raw_fragments = st.sampled_from(
    ["NaN", "-Infinity", "1e999", '"\\u003a"', '"a\\u003ab"', '"\\ud800"', "[" * 600 + "]" * 600]
)


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    """A JSON-ish document: a random value, maybe with a repeated key or a raw fragment."""
    document = draw(json_values)
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    if isinstance(document, dict) and document and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(document)))
        text = text[:-1] + f", {json.dumps(key)}: {json.dumps(draw(json_values))}}}"
    if draw(st.booleans()):
        text = text.replace("null", draw(raw_fragments), 1)
    return text.encode("utf-8", errors="surrogatepass")


def mutated(payload: bytes, data: st.DataObject) -> bytes:
    """``payload`` with a few bytes replaced, inserted or cut."""
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(payload)))
        cut = data.draw(st.integers(0, 2))
        payload = payload[:at] + data.draw(st.binary(max_size=3)) + payload[at + cut :]
    return payload


def outcome(decode: Any, payload: bytes) -> object:
    try:
        return decode(payload)
    except InvalidEvent as error:
        return error.rejection.reason


def assert_parsed(payload: bytes | None) -> None:
    for result in (parse_interaction(payload, EVENTS), parse_item(payload, EVENTS)):
        assert isinstance(result, InteractionEvent | ItemEvent | Rejection)
        if isinstance(result, Rejection):
            assert result.reason in set(RejectionReason)
            assert result.detail.split(":")[0] and "\n" not in result.detail
    control = parse_control(payload)
    assert isinstance(control, TrainCommand | RunStarted | RunFinished | ModelActivated | Rejection)
    with contextlib.suppress(ValueError):  # its only error: the output is streamrec's own
        decode_recommendation(payload)  # type: ignore[arg-type]


@property_test
@given(json_documents())
def test_random_documents_never_make_a_parser_raise(payload: bytes) -> None:
    assert_parsed(payload)


@property_test
@given(st.binary(max_size=400))
def test_random_bytes_never_make_a_parser_raise(payload: bytes) -> None:
    assert_parsed(payload)


@property_test
@given(json_documents())
def test_the_fast_path_decides_as_the_strict_decoder(payload: bytes) -> None:
    # msgspec keeps the last of repeated keys; the colon count must send those to the judge.
    fast = outcome(lambda data: decode_object(data, max_bytes=10**6), payload)
    strict = outcome(strictly_decoded, payload)
    if fast is RejectionReason.NOT_AN_OBJECT:
        assert not isinstance(strict, dict | RejectionReason)
    else:
        assert fast == strict


@st.composite
def interaction_events(draw: st.DrawFn) -> InteractionEvent:
    ids = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=30)
    event_type = draw(st.sampled_from(sorted({"rating", *EVENTS.implicit_weights})))
    low, high = (EVENTS.rating_min, EVENTS.rating_max) if event_type == "rating" else (-1, 1)
    value = st.floats(low, high) if event_type == "rating" else st.none() | st.floats(low, high)
    attributes = st.dictionaries(ids.filter(lambda name: len(name) <= 64), ids, max_size=3)
    return InteractionEvent(
        draw(ids),
        draw(ids),
        draw(ids),
        event_type,
        draw(st.floats(0, 4.1e9)),
        draw(value),
        draw(attributes),
    )


@property_test
@given(interaction_events(), st.data())
def test_mutated_events_never_make_a_parser_raise(
    event: InteractionEvent, data: st.DataObject
) -> None:
    assert parse_interaction(encode_event(event), EVENTS) == event
    assert_parsed(mutated(encode_event(event), data))


control_messages = st.one_of(
    st.builds(
        TrainCommand,
        st.text("abc-0123456789", min_size=1, max_size=20),
        st.sampled_from([TrainingTrigger.OPERATOR, TrainingTrigger.DRIFT]),
        st.floats(0, 4.1e9),
        st.none() | st.text("xyz .:", min_size=1, max_size=40),
        st.booleans(),
    ),
    st.builds(RunStarted, st.just("r-1"), st.integers(1, 2**40), st.floats(0, 4.1e9)),
    st.builds(
        RunFinished,
        st.just("r"),
        st.integers(1, 99),
        st.just("promoted"),
        st.just("ok"),
        st.floats(0, 4.1e9),
    ),
    st.builds(ModelActivated, st.integers(1, 99), st.none() | st.integers(1, 99), st.floats(0, 1)),
)


@property_test
@given(control_messages, st.data())
def test_control_messages_round_trip_and_mutations_never_raise(
    message: TrainCommand | RunStarted | RunFinished | ModelActivated, data: st.DataObject
) -> None:
    payload = encode_control(message)
    assert parse_control(payload) == message
    assert msgspec.json.decode(payload)["schema_version"] == 1
    assert_parsed(mutated(payload, data))
