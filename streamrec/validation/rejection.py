"""Why an event was refused: a stable reason code and a one-line detail naming the field.

Dead-letter records carry both, so the codes are part of the contract (docs/events.md lists
them): never rename one, only add.

>>> rejection = Rejection(RejectionReason.MISSING_FIELD, "user_id: is required")
>>> str(rejection.reason), rejection.detail
('missing_field', 'user_id: is required')
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectionReason(StrEnum):
    """Stable snake_case codes; the meaning of each is in docs/events.md."""

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
    # Not found by validation, which is stateless: by the ingest service, against the ids
    # it stored (streamrec.services.event_ids).
    EVENT_ID_REUSED = "event_id_reused"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that was not accepted. ``detail`` is one line and starts with the field."""

    reason: RejectionReason
    detail: str


class InvalidEvent(Exception):
    """Raised inside validation and turned into a Rejection at the edge of parse_*.

    Deliberately not a ValueError, so that catching the JSON decoder's ValueErrors never
    swallows it.
    """

    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.rejection = Rejection(reason, detail)
