"""Input events from untrusted bytes. msgspec checks what their messages declare
(streamrec.wire.events); the rules here are those a type cannot state: an id's length (a
setting), integers as text, a timestamp's two forms, a value's scale, the topic and the key."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from streamrec.config import EventSettings
from streamrec.events import InteractionEvent, ItemEvent, Rejection
from streamrec.events import RejectionReason as Reason
from streamrec.preferences import RATING, known_event_types
from streamrec.validation.decoding import InvalidEvent, converted, read_document, shown, type_name
from streamrec.wire import FORBIDDEN, UNCLEAN
from streamrec.wire import events as wire

Message = TypeVar("Message", wire.InteractionMessage, wire.ItemMessage)
_IDS = ("event_id", "user_id", "item_id")
_FOREIGN = {wire.InteractionMessage: wire.ITEM_FIELDS, wire.ItemMessage: wire.INTERACTION_FIELDS}


def parse_interaction(
    payload: object, settings: EventSettings, key: bytes | None = None
) -> InteractionEvent | Rejection:
    """The event in ``payload``, or why it is refused; never raises. A key, when there is one,
    must be the user id, checked once the event is otherwise valid."""
    try:
        message = _message(payload, settings, wire.InteractionMessage)
        ids = [read_id(getattr(message, name), name, settings.max_id_length) for name in _IDS]
        attributes = (message.user_attributes or {}).items()  # a null value means unknown
        event = InteractionEvent(
            *ids,
            _event_type(message.type, settings),
            read_timestamp(message.timestamp),
            _value(message, settings),
            {k: _label(v, f"user_attributes[{shown(k)}]") for k, v in attributes if v is not None},
        )
    except InvalidEvent as error:
        return error.rejection
    return _key_mismatch(key, event.user_id, "user_id") or event


def parse_item(
    payload: object, settings: EventSettings, key: bytes | None = None
) -> ItemEvent | Rejection:
    """The item upsert in ``payload``, or why it is refused; never raises. A key, when there
    is one, must be the item id. Categorical values are a set, each first occurrence kept."""
    try:
        message = _message(payload, settings, wire.ItemMessage)
        item_id = read_id(message.item_id, "item_id", settings.max_id_length)
        timestamp = read_timestamp(message.timestamp)
        categorical = {
            name: tuple(dict.fromkeys(_label(v, f"categorical[{shown(name)}]") for v in values))
            for name, values in (message.categorical or {}).items()
            if values is not None
        }
        numeric = {name: v for name, v in (message.numeric or {}).items() if v is not None}
        item = ItemEvent(item_id, timestamp, message.title, categorical, numeric)
    except InvalidEvent as error:
        return error.rejection
    return _key_mismatch(key, item.item_id, "item_id") or item


def read_id(value: object, where: str, max_length: int) -> str:
    """Text or an integer (its decimal string); ``invalid_id`` if empty, too long or unclean."""
    return read_text(value, where, max_length, Reason.INVALID_ID)


def read_timestamp(value: float | str) -> float:
    """Epoch seconds, or an ISO-8601 string with a timezone, in 1970..2100."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value) if len(value) <= 64 else None
        except ValueError:
            moment = None
        if moment is None or moment.utcoffset() is None:
            detail = f"{shown(value)} is not an ISO-8601 date-time with a timezone"
            raise InvalidEvent(Reason.INVALID_TIMESTAMP, f"timestamp: {detail}")
        value = moment.timestamp()  # aware minus the aware epoch: no overflow in years 1..9999
    if not wire.EARLIEST_TIMESTAMP <= value <= wire.LATEST_TIMESTAMP:
        hint = " (milliseconds? send seconds)" if value <= wire.LATEST_TIMESTAMP * 1000 else ""
        detail = f"{value!r} is outside 1970..2100 in epoch seconds{hint}"
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"timestamp: {detail}")
    return value


def read_text(value: object, where: str, max_length: int, reason: Reason) -> str:
    text = str(value) if type(value) is int else value
    if type(text) is not str:
        detail = f"{where}: must be a string or an integer, got {type_name(value)}"
        raise InvalidEvent(Reason.WRONG_TYPE, detail)
    if not text:
        raise InvalidEvent(reason, f"{where}: must not be empty")
    if len(text) > max_length:
        too_long = Reason.TOO_LONG if reason is Reason.INVALID_TEXT else reason
        raise InvalidEvent(too_long, f"{where}: {len(text)} characters, the limit is {max_length}")
    if FORBIDDEN.search(text):
        raise InvalidEvent(reason, f"{where}: {UNCLEAN}")
    return text


def _label(value: str | int, where: str) -> str:
    return read_text(value, where, wire.MAX_LABEL_LENGTH, Reason.INVALID_TEXT)


def _message(payload: object, settings: EventSettings, kind: type[Message]) -> Message:
    """Refuses as ``wrong_topic`` a message with a field that only the other event type has."""
    document = read_document(payload, settings.max_event_bytes)
    topic, other = ("item", "interaction") if kind is wire.ItemMessage else ("interaction", "item")
    if field := next((name for name in _FOREIGN[kind] if name in document), None):
        detail = f"{field}: is a field of {other} events; this topic takes {topic} events"
        raise InvalidEvent(Reason.WRONG_TOPIC, detail)
    return converted(document, kind)


def _event_type(name: str, settings: EventSettings) -> str:
    if name != RATING and name not in settings.implicit_weights:
        known = sorted(known_event_types(settings))
        listed = known[:10] + (["..."] if len(known) > 10 else [])
        raise InvalidEvent(
            Reason.UNKNOWN_EVENT_TYPE, f"type: {shown(name)} is not one of {', '.join(listed)}"
        )
    return name


def _value(message: wire.InteractionMessage, settings: EventSettings) -> float | None:
    """A rating on the configured scale, or an implicit event's optional weight in [-1, 1]."""
    if message.value is None and message.type == RATING:
        raise InvalidEvent(Reason.MISSING_FIELD, "value: a rating needs a value")
    low, high = (settings.rating_min, settings.rating_max) if message.type == RATING else (-1, 1)
    if message.value is not None and not low <= message.value <= high:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"value: {message.value!r} not in [{low}, {high}]")
    return message.value


def _key_mismatch(key: bytes | None, body_id: str, field: str) -> Rejection | None:
    """None when ``key`` names the body's id, or is null (the body decides)."""
    if key is None or key == body_id.encode("utf-8"):
        return None
    text = bytes(key[:160]).decode("utf-8", errors="backslashreplace")
    return Rejection(Reason.KEY_MISMATCH, f"key: {shown(text)} is not the {field} {shown(body_id)}")
