"""Item events on the wire (topic ``items``, keyed by item id): upserts of visible features.

>>> from streamrec.config import EventSettings
>>> payload = (b'{"schema_version": 1, "item_id": 1, "timestamp": 0, "title": "Toy Story",'
...            b' "categorical": {"genres": ["Animation", "Comedy", "Comedy"]},'
...            b' "numeric": {"year": 1995}}')
>>> item = parse_item(payload, EventSettings())
>>> item.item_id, item.categorical, item.numeric
('1', {'genres': ('Animation', 'Comedy')}, {'year': 1995.0})
>>> parse_item(encode_item(item), EventSettings()) == item
True
"""

from __future__ import annotations

from typing import Any

from streamrec.config import EventSettings
from streamrec.events import SCHEMA_VERSION, ItemEvent
from streamrec.validation.fields import (
    MAX_FEATURES,
    MAX_TITLE_LENGTH,
    MAX_VALUES_PER_FEATURE,
    check_schema_version,
    read_array,
    read_entries,
    read_float,
    read_id,
    read_label,
    read_text,
    read_timestamp,
    required,
)
from streamrec.validation.json_payload import decode_object, encode_object
from streamrec.validation.rejection import InvalidEvent, Rejection
from streamrec.validation.routing import check_own_fields, key_mismatch


def parse_item(
    payload: bytes | bytearray | memoryview | None,
    settings: EventSettings,
    key: bytes | None = None,
) -> ItemEvent | Rejection:
    """The item upsert in ``payload``, or why it is refused. Never raises.

    ``key`` is the message's key: when there is one it must be the item id
    (``key_mismatch``), checked once the event is otherwise valid.
    """
    try:
        document = decode_object(payload, settings.max_event_bytes)
        item = _read_item(document, settings)
    except InvalidEvent as error:
        return error.rejection
    return key_mismatch(key, item.item_id, "item_id") or item


def encode_item(event: ItemEvent) -> bytes:
    """The wire form of ``event``. It does not validate: parse_item is the judge.
    Raises ValueError for a non-finite number or text that is not UTF-8."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "item_id": event.item_id,
        "timestamp": event.timestamp,
    }
    if event.title is not None:
        document["title"] = event.title
    if event.categorical:
        document["categorical"] = {name: list(values) for name, values in event.categorical.items()}
    if event.numeric:
        document["numeric"] = event.numeric
    return encode_object(document)


def _read_item(document: dict[str, Any], settings: EventSettings) -> ItemEvent:
    check_schema_version(document)
    check_own_fields(document, "item")
    item_id = read_id(required(document, "item_id"), "item_id", settings.max_id_length)
    timestamp = read_timestamp(required(document, "timestamp"), "timestamp")
    title = document.get("title")
    categorical = {
        name: _read_values(entry, where)
        for name, entry, where in read_entries(
            document.get("categorical"), "categorical", MAX_FEATURES
        )
    }
    numeric = {
        name: read_float(entry, where)
        for name, entry, where in read_entries(document.get("numeric"), "numeric", MAX_FEATURES)
    }
    return ItemEvent(
        item_id=item_id,
        timestamp=timestamp,
        title=None if title is None else read_text(title, "title", MAX_TITLE_LENGTH),
        categorical=categorical,
        numeric=numeric,
    )


def _read_values(value: Any, where: str) -> tuple[str, ...]:
    values = read_array(value, where, MAX_VALUES_PER_FEATURE)
    labels = (read_label(label, f"{where}[{index}]") for index, label in enumerate(values))
    # A feature is a set (multi-hot); the first occurrence keeps its place.
    return tuple(dict.fromkeys(labels))
