"""The input topics' messages, declared once as msgspec Structs: interaction events (topic
``interactions``, keyed by user id) and item events (topic ``items``, keyed by item id).

>>> from streamrec.config import EventSettings
>>> payload = (b'{"schema_version": 1, "event_id": "e1", "user_id": 7, "item_id": "i9",'
...            b' "type": "click", "timestamp": "2023-11-14T22:13:20Z"}')
>>> event = parse_interaction(payload, EventSettings())
>>> event.user_id, event.timestamp, parse_interaction(encode_event(event), EventSettings())
('7', 1700000000.0, InteractionEvent(event_id='e1', user_id='7', item_id='i9', ...))
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from streamrec.config import EventSettings
from streamrec.events import SCHEMA_VERSION, InteractionEvent, ItemEvent
from streamrec.preferences import RATING, known_event_types
from streamrec.validation import fields
from streamrec.validation.codec import converted, decode_object, encode_message, shown, type_name
from streamrec.validation.fields import read_entries, read_id, read_label, read_timestamp
from streamrec.validation.rejection import InvalidEvent, Rejection
from streamrec.validation.rejection import RejectionReason as Reason
from streamrec.validation.routing import check_own_fields, key_mismatch

Payload = bytes | bytearray | memoryview | None
Message = TypeVar("Message", "InteractionMessage", "ItemMessage")
# Objects whose keys are data (attribute and feature names), read by fields.read_entries.
Attributes = Annotated[dict[str, Any], Meta(max_length=fields.MAX_USER_ATTRIBUTES)]
Features = Annotated[dict[str, Any], Meta(max_length=fields.MAX_FEATURES)]
_IDS = ("event_id", "user_id", "item_id")


class InteractionMessage(Struct):
    """docs/events.md, "Interaction events"."""

    schema_version: int
    event_id: str | int
    user_id: str | int
    item_id: str | int
    type: str
    timestamp: float | str
    value: float | None = None
    user_attributes: Attributes | None = None


class ItemMessage(Struct):
    """docs/events.md, "Item events"."""

    schema_version: int
    item_id: str | int
    timestamp: float | str
    title: fields.clean_text(fields.MAX_TITLE_LENGTH) | None = None
    categorical: Features | None = None
    numeric: Features | None = None


def parse_interaction(
    payload: Payload, settings: EventSettings, key: bytes | None = None
) -> InteractionEvent | Rejection:
    """The event in ``payload``, or why it is refused; never raises. A key, when there is one,
    must be the user id (``key_mismatch``), checked once the event is otherwise valid."""
    try:
        message = _message(payload, settings, InteractionMessage, "interaction")
        ids = [read_id(getattr(message, name), name, settings.max_id_length) for name in _IDS]
        event = InteractionEvent(
            *ids,
            _event_type(message.type, settings),
            read_timestamp(message.timestamp, "timestamp"),
            _value(message, settings),
            read_entries(message.user_attributes, "user_attributes", read_label),
        )
    except InvalidEvent as error:
        return error.rejection
    return key_mismatch(key, event.user_id, "user_id") or event


def parse_item(
    payload: Payload, settings: EventSettings, key: bytes | None = None
) -> ItemEvent | Rejection:
    """The item upsert in ``payload``, or why it is refused; never raises. A key, when there
    is one, must be the item id."""
    try:
        message = _message(payload, settings, ItemMessage, "item")
        item = ItemEvent(
            read_id(message.item_id, "item_id", settings.max_id_length),
            read_timestamp(message.timestamp, "timestamp"),
            message.title,
            read_entries(message.categorical, "categorical", _feature_values),
            read_entries(message.numeric, "numeric", fields.read_number),
        )
    except InvalidEvent as error:
        return error.rejection
    return key_mismatch(key, item.item_id, "item_id") or item


def encode_event(event: InteractionEvent | ItemEvent) -> bytes:
    """The wire form of ``event``, unvalidated (parse_* judge), its field names those of its
    message; absent and empty optional fields are left out. ValueError if not encodable."""
    present = {name: v for name, v in msgspec.to_builtins(event).items() if v not in (None, {})}
    return encode_message({"schema_version": SCHEMA_VERSION} | present)


encode_interaction = encode_item = encode_event


def _message(
    payload: Payload,
    settings: EventSettings,
    kind: type[Message],
    topic: Literal["interaction", "item"],
) -> Message:
    document = decode_object(payload, settings.max_event_bytes)
    fields.check_schema_version(document)
    check_own_fields(document, topic)
    return converted(document, kind)


def _event_type(name: str, settings: EventSettings) -> str:
    if name != RATING and name not in settings.implicit_weights:
        known = sorted(known_event_types(settings))
        listed = known[:10] + (["..."] if len(known) > 10 else [])
        detail = f"type: {shown(name)} is not one of {', '.join(listed)}"
        raise InvalidEvent(Reason.UNKNOWN_EVENT_TYPE, detail)
    return name


def _value(message: InteractionMessage, settings: EventSettings) -> float | None:
    """A rating on the configured scale, or an implicit event's optional weight in [-1, 1]."""
    if message.type == RATING and message.value is None:
        raise InvalidEvent(Reason.MISSING_FIELD, "value: a rating needs a value")
    low, high = (settings.rating_min, settings.rating_max) if message.type == RATING else (-1, 1)
    return None if message.value is None else fields.read_between(message.value, "value", low, high)


def _feature_values(values: Any, where: str) -> tuple[str, ...]:
    """A categorical feature's values: a set (multi-hot), each first occurrence in place."""
    if type(values) is not list:
        raise InvalidEvent(Reason.WRONG_TYPE, f"{where}: must be an array, got {type_name(values)}")
    if len(values) > fields.MAX_VALUES_PER_FEATURE:
        detail = f"{where}: {len(values)} items, the limit is {fields.MAX_VALUES_PER_FEATURE}"
        raise InvalidEvent(Reason.TOO_LONG, detail)
    return tuple(dict.fromkeys(read_label(v, f"{where}[{i}]") for i, v in enumerate(values)))
