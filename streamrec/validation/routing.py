"""Each input topic takes its own event type, and a message's key names the body's id.

Both checks work on what was decoded already: a few lookups and one comparison, no reparse.

>>> check_own_fields({"schema_version": 1, "user_id": "u1"}, "item")
Traceback (most recent call last):
...
streamrec.validation.rejection.InvalidEvent: wrong_topic: user_id: is a field of interaction ...
>>> key_mismatch(b"u2", "u1", "user_id").detail, key_mismatch(None, "u1", "user_id")
("key: 'u2' is not the user_id 'u1'", None)
"""

from __future__ import annotations

from typing import Literal

from streamrec.validation.codec import shown
from streamrec.validation.rejection import InvalidEvent, Rejection, RejectionReason

# Reserved to their event type, so that every other unknown field can still be ignored.
INTERACTION_FIELDS = ("event_id", "user_id", "type", "value", "user_attributes")
ITEM_FIELDS = ("title", "categorical", "numeric")
_FOREIGN = {"interaction": ("item", ITEM_FIELDS), "item": ("interaction", INTERACTION_FIELDS)}


def check_own_fields(document: dict, kind: Literal["interaction", "item"]) -> None:
    """Raise ``wrong_topic`` if ``document``, read from the topic of ``kind`` events, has a
    field that only the other event type has."""
    other, foreign = (
        ("item", ITEM_FIELDS) if kind == "interaction" else ("interaction", INTERACTION_FIELDS)
    )
    for field in foreign:
        if field in document:
            detail = f"{field}: is a field of {other} events; this topic takes {kind} events"
            raise InvalidEvent(RejectionReason.WRONG_TOPIC, detail)


def key_mismatch(key: bytes | None, body_id: str, field: str) -> Rejection | None:
    """Why a message keyed ``key`` cannot carry the body whose ``field`` is ``body_id``; None
    when they agree or the key is null (the body decides)."""
    if key is None or key == body_id.encode("utf-8"):
        return None
    text = bytes(key[:160]).decode("utf-8", errors="backslashreplace")
    detail = f"key: {shown(text)} is not the {field} {shown(body_id)}"
    return Rejection(RejectionReason.KEY_MISMATCH, detail)
