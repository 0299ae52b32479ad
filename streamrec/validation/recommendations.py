"""Recommendation messages on the wire (topic ``recommendations``, keyed by user id).

The output side: streamrec writes these, so decoding is for trusted readers and tests and
raises ValueError instead of returning a Rejection.

>>> from streamrec.events import RecommendationMessage, RecommendedItem
>>> message = RecommendationMessage(user_id="u1", items=(RecommendedItem("i9", 0.8),),
...                                 model_version=3, top_clusters=((4, 0.9),),
...                                 generated_at=1700000000.0)
>>> decode_recommendation(encode_recommendation(message)) == message
True
>>> explained = RecommendationMessage("u1", (RecommendedItem("i9", 0.8),), 3, ((4, 0.9),),
...                                   1700000000.0, lead_clusters=((4, 1.0),))
>>> decode_recommendation(encode_recommendation(explained)).lead_clusters
((4, 1.0),)
>>> decode_recommendation(b'{"schema_version": 1}')
Traceback (most recent call last):
...
ValueError: invalid recommendation message: missing_field: user_id: is required
"""

from __future__ import annotations

from typing import Any

from streamrec.events import RecommendationMessage, RecommendedItem, SourceEvent
from streamrec.validation.fields import (
    check_schema_version,
    read_array,
    read_float,
    read_float_between,
    read_id,
    read_integer,
    read_object,
    read_text,
    required,
)
from streamrec.validation.json_payload import decode_object, encode_object
from streamrec.validation.rejection import InvalidEvent

# Generous bounds: the writer is streamrec itself, these only stop garbage.
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_LONGEST_ID = 4096  # the most EventSettings.max_id_length allows
_MAX_ENTRIES = 100_000
_LONGEST_TOPIC_NAME = 249  # Kafka's own limit


def encode_recommendation(message: RecommendationMessage) -> bytes:
    """The wire form of ``message`` (RecommendationMessage.to_json_dict as UTF-8 JSON)."""
    return encode_object(message.to_json_dict())


def decode_recommendation(payload: bytes) -> RecommendationMessage:
    """The message in ``payload``; raises ValueError naming the first problem."""
    try:
        return _read_recommendation(decode_object(payload, _MAX_MESSAGE_BYTES))
    except InvalidEvent as error:
        raise ValueError(f"invalid recommendation message: {error}") from None


def _read_recommendation(document: dict[str, Any]) -> RecommendationMessage:
    check_schema_version(document)
    user_id = read_id(required(document, "user_id"), "user_id", _LONGEST_ID)
    entries = read_array(required(document, "items"), "items", _MAX_ENTRIES)
    read = [_read_item(entry, f"items[{index}]") for index, entry in enumerate(entries)]
    items = tuple(item for item, _ in read)
    # The lead clusters are kept only when every item names one: they align with the items.
    leads = tuple(lead for _, lead in read if lead is not None)
    clusters = read_array(required(document, "top_clusters"), "top_clusters", _MAX_ENTRIES)
    top_clusters = tuple(
        _read_cluster(entry, f"top_clusters[{index}]") for index, entry in enumerate(clusters)
    )
    source = document.get("source")
    return RecommendationMessage(
        user_id=user_id,
        items=items,
        model_version=read_integer(required(document, "model_version"), "model_version", 0),
        top_clusters=top_clusters,
        generated_at=read_float(required(document, "generated_at"), "generated_at"),
        source=None if source is None else _read_source(source),
        lead_clusters=leads if len(leads) == len(items) else (),
    )


def _read_item(value: Any, where: str) -> tuple[RecommendedItem, tuple[int, float] | None]:
    """The item, and its lead cluster and share when the entry carries them."""
    entry = read_object(value, where, _MAX_ENTRIES)
    item = RecommendedItem(
        item_id=read_id(*_field(entry, where, "item_id"), _LONGEST_ID),
        score=read_float(*_field(entry, where, "score")),
    )
    if entry.get("cluster") is None or entry.get("share") is None:
        return item, None
    cluster = read_integer(*_field(entry, where, "cluster"), 0)
    return item, (cluster, read_float_between(*_field(entry, where, "share"), 0.0, 1.0))


def _read_cluster(value: Any, where: str) -> tuple[int, float]:
    entry = read_object(value, where, _MAX_ENTRIES)
    cluster = read_integer(*_field(entry, where, "cluster"), 0)
    return cluster, read_float(*_field(entry, where, "membership"))


def _read_source(value: Any) -> SourceEvent:
    entry = read_object(value, "source", _MAX_ENTRIES)
    return SourceEvent(
        topic=read_text(*_field(entry, "source", "topic"), _LONGEST_TOPIC_NAME),
        partition=read_integer(*_field(entry, "source", "partition"), 0),
        offset=read_integer(*_field(entry, "source", "offset"), 0),
        timestamp=read_float(*_field(entry, "source", "timestamp")),
    )


def _field(entry: dict[str, Any], where: str, name: str) -> tuple[Any, str]:
    """A required member of a nested object, and its path for details."""
    path = f"{where}.{name}"
    return required(entry, name, path), path
