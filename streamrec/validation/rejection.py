"""Why a message was refused: a stable reason code and a one-line detail that starts with the
field. Dead letters carry both, so the codes are contract (docs/events.md): add, never rename.

>>> str(RejectionReason.MISSING_FIELD), Rejection(RejectionReason.MISSING_FIELD, "user_id: ...")
('missing_field', Rejection(reason=<RejectionReason.MISSING_FIELD: 'missing_field'>, ...))
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectionReason(StrEnum):
    EMPTY_PAYLOAD = "empty_payload"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    DUPLICATE_KEY = "duplicate_key"
    TOO_DEEPLY_NESTED = "too_deeply_nested"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    TOO_LONG = "too_long"
    INVALID_ID = "invalid_id"
    INVALID_TEXT = "invalid_text"
    INVALID_TIMESTAMP = "invalid_timestamp"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    WRONG_TOPIC = "wrong_topic"
    KEY_MISMATCH = "key_mismatch"
    # Found against the stored event ids (streamrec.services.event_ids): parsing is stateless.
    EVENT_ID_REUSED = "event_id_reused"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectionReason
    detail: str


class InvalidEvent(Exception):
    """Raised inside validation, returned as its Rejection by parse_*. Not a ValueError, so
    that catching a decoder's ValueErrors never swallows it."""

    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.rejection = Rejection(reason, detail)
