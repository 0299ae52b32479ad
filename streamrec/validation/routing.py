"""Routing rules: each input topic takes its own event type, and a key names the body's id.

A message on the wrong topic, or keyed by another user or item than its body names, would
otherwise be applied where it does not belong: an interaction read as an item upsert (unknown
fields are ignored), or a user's event handled by the consumer that owns another user's
partition. Both checks work on what validation decoded already, so they cost a few dict
lookups and one short comparison per message, never a second parse.

>>> try:
...     check_own_fields({"schema_version": 1, "user_id": "u1"}, "item")
... except InvalidEvent as error:
...     print(error.rejection.reason, error.rejection.detail)
wrong_topic user_id: is a field of interaction events; this topic takes item events
>>> key_mismatch(b"u2", "u1", "user_id").detail
"key: 'u2' is not the user_id 'u1'"
>>> key_mismatch(None, "u1", "user_id") is None  # a message without a key is not checked
True
"""

from __future__ import annotations

from typing import Any, Literal

from streamrec.validation.json_payload import shown
from streamrec.validation.rejection import InvalidEvent, Rejection, RejectionReason

# The top-level fields that belong to one event type only. A message carrying a field of the
# other type was sent to the wrong topic; the shared fields (schema_version, item_id,
# timestamp) tell nothing. These names are reserved to their type, so that unknown fields can
# still be ignored for forward compatibility.
INTERACTION_FIELDS = ("event_id", "user_id", "type", "value", "user_attributes")
ITEM_FIELDS = ("title", "categorical", "numeric")
# Each topic's event type, and the fields only the other type has.
_FOREIGN_FIELDS = {
    "interaction": ("item", ITEM_FIELDS),
    "item": ("interaction", INTERACTION_FIELDS),
}
# Enough of a key to recognise it in a detail; a key can be as large as a message.
_KEY_BYTES_SHOWN = 160


def check_own_fields(document: dict[str, Any], kind: Literal["interaction", "item"]) -> None:
    """Raise ``wrong_topic`` if ``document``, read from the topic of ``kind`` events, has a
    field that only the other event type has."""
    other_kind, foreign = _FOREIGN_FIELDS[kind]
    for field in foreign:
        if field in document:
            raise InvalidEvent(
                RejectionReason.WRONG_TOPIC,
                f"{field}: is a field of {other_kind} events; this topic takes {kind} events",
            )


def key_mismatch(key: bytes | None, body_id: str, field: str) -> Rejection | None:
    """Why a message keyed ``key`` cannot carry the body whose ``field`` is ``body_id``, or
    None when they agree. A message without a key (null) is not checked: the body decides."""
    if key is None or key == body_id.encode("utf-8"):
        return None
    text = bytes(key[:_KEY_BYTES_SHOWN]).decode("utf-8", errors="backslashreplace")
    return Rejection(
        RejectionReason.KEY_MISMATCH, f"key: {shown(text)} is not the {field} {shown(body_id)}"
    )
