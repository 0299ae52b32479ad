"""Dead letters: hostile payloads mixed into the stream all land in the dead-letter topic and
table with a reason, and every valid event around them is applied."""

from __future__ import annotations

import hashlib
import json
import random
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.storage import UnitOfWork
from streamrec.validation import RejectionReason
from tests.integration.pipeline_support import (
    consume_in_process,
    fresh_topics,
    on_postgresql,
    pipeline_settings,
    produce,
    read_topic,
    register_model,
)

VALID_FIELDS = {
    "schema_version": 1,
    "event_id": "e",
    "user_id": "u",
    "item_id": "i",
    "type": "rating",
    "value": 4.0,
    "timestamp": 1_700_000_000,
}
# Of a kind that no field of an interaction event accepts.
wrong_values = (
    st.none()
    | st.booleans()
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@st.composite
def broken_event(draw: st.DrawFn) -> bytes:
    """A valid event with one field dropped or replaced by a value of the wrong kind."""
    fields = dict(VALID_FIELDS)
    name = draw(st.sampled_from(sorted(fields)))
    if draw(st.booleans()):
        del fields[name]
    else:
        fields[name] = draw(wrong_values)
    return json.dumps(fields).encode()


hostile = st.one_of(
    st.binary(max_size=80),
    broken_event(),
    st.sampled_from(
        [
            b"",
            b"[" * 10_000 + b"]" * 10_000,
            b'{"schema_version": 1, "schema_version": 1}',
            b"\xed\xa0\x80",
            b'{"schema_version": 1, "event_id": "e", "user_id": "u", "item_id": "i",'
            b' "type": "rating", "value": NaN, "timestamp": 1700000000}',
            b'{"schema_version": 1, "event_id": "' + b"x" * 70_000 + b'"}',
        ]
    ),
)


@on_postgresql
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bad=st.lists(hostile, min_size=1, max_size=25), positions=st.randoms(use_true_random=False))
def test_hostile_payloads_are_dead_lettered_and_valid_events_applied(
    kafka_settings: Settings,
    database_url: str,
    engine: Engine,
    bad: list[bytes],
    positions: random.Random,
) -> None:
    pipeline = fresh_topics(pipeline_settings(kafka_settings, database_url))
    if not _has_model(engine):
        register_model(engine, pipeline)
    run = uuid.uuid4().hex[:8]
    valid = [
        InteractionEvent(f"{run}-e{n}", f"{run}-u{n % 5}", f"i{n}", "click", 1_700_000_000.0 + n)
        for n in range(30)
    ]
    stream: list[InteractionEvent | bytes] = [*valid]
    for payload in bad:
        stream.insert(positions.randrange(len(stream) + 1), payload)
    produce(pipeline, stream)

    summary = consume_in_process(pipeline, engine, idle_exit_seconds=1.5)
    assert summary.counters.dead_letters == len(bad)

    # Each letter keeps its payload whole up to the bound, and describes the whole original.
    kept = pipeline.events.max_dead_letter_payload_bytes
    letters = read_topic(pipeline, pipeline.topics.dead_letters)
    assert sorted(letter.value or b"" for letter in letters) == sorted(
        payload[:kept] for payload in bad
    )
    known_reasons = {reason.value for reason in RejectionReason}
    originals = []
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers}
        assert headers["reason"] in known_reasons
        assert headers["detail"]
        assert headers["source_topic"] == pipeline.topics.interactions
        assert int(headers["source_offset"]) >= 0
        assert headers["payload_truncated"] == str(int(headers["payload_size"]) > kept).lower()
        originals.append((int(headers["payload_size"]), headers["payload_sha256"]))
    assert sorted(originals) == sorted(
        (len(payload), hashlib.sha256(payload).hexdigest()) for payload in bad
    )
    with UnitOfWork(engine) as uow:
        stored = [
            letter
            for letter in uow.dead_letters.recent(limit=10_000)
            if letter.source_topic == pipeline.topics.interactions
        ]
        applied = uow.interactions.for_users({event.user_id for event in valid})
    assert sorted(letter.payload for letter in stored) == sorted(payload[:kept] for payload in bad)
    assert {(row.user_id, row.item_id) for rows in applied.values() for row in rows} == {
        (event.user_id, event.item_id) for event in valid
    }


def _has_model(engine: Engine) -> bool:
    with UnitOfWork(engine) as uow:
        return uow.models.active_version() is not None
