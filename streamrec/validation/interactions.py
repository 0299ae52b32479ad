"""Interaction events on the wire (topic ``interactions``, keyed by user id).

>>> from streamrec.config import EventSettings
>>> settings = EventSettings()
>>> payload = (b'{"schema_version": 1, "event_id": "e1", "user_id": 7, "item_id": "i9",'
...            b' "type": "click", "timestamp": "2023-11-14T22:13:20Z"}')
>>> event = parse_interaction(payload, settings)
>>> event.user_id, event.type, event.timestamp
('7', 'click', 1700000000.0)
>>> parse_interaction(encode_interaction(event), settings) == event
True
>>> parse_interaction(b'{"schema_version": 1, "event_id": "e1"}', settings)
Rejection(reason=<RejectionReason.MISSING_FIELD: 'missing_field'>, detail='user_id: is required')
"""

from __future__ import annotations

from typing import Any

from streamrec.config import EventSettings
from streamrec.events import SCHEMA_VERSION, InteractionEvent
from streamrec.preferences import RATING, known_event_types
from streamrec.validation.fields import (
    MAX_USER_ATTRIBUTES,
    check_schema_version,
    read_entries,
    read_float_between,
    read_id,
    read_label,
    read_timestamp,
    required,
    wrong_type,
)
from streamrec.validation.json_payload import decode_object, encode_object, shown
from streamrec.validation.rejection import InvalidEvent, Rejection, RejectionReason
from streamrec.validation.routing import check_own_fields, key_mismatch

# How many known types an unknown_event_type detail lists before eliding the rest.
_TYPES_SHOWN = 10


def parse_interaction(
    payload: bytes | bytearray | memoryview | None,
    settings: EventSettings,
    key: bytes | None = None,
) -> InteractionEvent | Rejection:
    """The event in ``payload``, or why it is refused. Never raises.

    ``key`` is the message's key: when there is one it must be the event's user id
    (``key_mismatch``), checked once the event is otherwise valid.
    """
    try:
        document = decode_object(payload, settings.max_event_bytes)
        event = _read_interaction(document, settings)
    except InvalidEvent as error:
        return error.rejection
    return key_mismatch(key, event.user_id, "user_id") or event


def encode_interaction(event: InteractionEvent) -> bytes:
    """The wire form of ``event``. It does not validate: parse_interaction is the judge.
    Raises ValueError for a non-finite number or text that is not UTF-8."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": event.event_id,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "type": event.type,
        "timestamp": event.timestamp,
    }
    if event.value is not None:
        document["value"] = event.value
    if event.user_attributes:
        document["user_attributes"] = event.user_attributes
    return encode_object(document)


def _read_interaction(document: dict[str, Any], settings: EventSettings) -> InteractionEvent:
    check_schema_version(document)
    check_own_fields(document, "interaction")
    event_id = read_id(required(document, "event_id"), "event_id", settings.max_id_length)
    user_id = read_id(required(document, "user_id"), "user_id", settings.max_id_length)
    item_id = read_id(required(document, "item_id"), "item_id", settings.max_id_length)
    event_type = _read_event_type(required(document, "type"), settings)
    timestamp = read_timestamp(required(document, "timestamp"), "timestamp")
    value = _read_value(document.get("value"), event_type, settings)
    user_attributes = {
        name: read_label(entry, where)
        for name, entry, where in read_entries(
            document.get("user_attributes"), "user_attributes", MAX_USER_ATTRIBUTES
        )
    }
    return InteractionEvent(
        event_id=event_id,
        user_id=user_id,
        item_id=item_id,
        type=event_type,
        timestamp=timestamp,
        value=value,
        user_attributes=user_attributes,
    )


def _read_event_type(value: Any, settings: EventSettings) -> str:
    if not isinstance(value, str):
        raise wrong_type("type", "a string", value)
    known = known_event_types(settings)
    if value not in known:
        names = sorted(known)
        listed = ", ".join(names[:_TYPES_SHOWN]) + (", ..." if len(names) > _TYPES_SHOWN else "")
        raise InvalidEvent(
            RejectionReason.UNKNOWN_EVENT_TYPE, f"type: {shown(value)} is not one of {listed}"
        )
    return value


def _read_value(value: Any, event_type: str, settings: EventSettings) -> float | None:
    if event_type == RATING:
        if value is None:
            raise InvalidEvent(RejectionReason.MISSING_FIELD, "value: a rating needs a value")
        return read_float_between(value, "value", settings.rating_min, settings.rating_max)
    if value is None:
        return None
    return read_float_between(value, "value", -1.0, 1.0)
