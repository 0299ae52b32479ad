"""Dead letters as they are kept: a bounded copy of the rejected record, and why.

A rejected record may be as large as the broker allows (megabytes), and its copy has to fit
in a dead-letter message under the producer's and broker's message limit, and should not
fill the dead-letter table. So a letter keeps at most ``events.max_dead_letter_payload_bytes``
of the payload and ``MAX_DEAD_LETTER_KEY_BYTES`` of the key, with the size and SHA-256 of the
whole payload; when anything was cut, the detail says so, hash included, so that the table
row (which has no columns for them) still identifies the original. ``dead_letter_headers``
describes a letter on the dead-letter topic (docs/events.md, "Dead-letter messages").

>>> from streamrec.services.batch import SourceRecord
>>> record = SourceRecord("interactions", 0, 7, b"u1", b"x" * 10)
>>> letter = dead_letter_of(record, "payload_too_large", "payload: 10 bytes, the limit is 4",
...                         received_at=1.0, max_payload_bytes=4)
>>> letter.payload, letter.payload_size, letter.truncated
(b'xxxx', 10, True)
>>> letter.detail  # doctest: +ELLIPSIS
'payload: 10 bytes, the limit is 4 (dead letter keeps the first 4 of 10 bytes, sha256 ...)'
>>> dead_letter_of(record, "invalid_json", "payload: ...", received_at=1.0,
...                max_payload_bytes=64).truncated
False
"""

from __future__ import annotations

import hashlib

from streamrec.services.batch import SourceRecord
from streamrec.storage.records import DeadLetter

# The longest key a letter keeps: a valid key is an id of at most 4,096 characters
# (events.max_id_length's bound) of at most 4 UTF-8 bytes each.
MAX_DEAD_LETTER_KEY_BYTES = 16_384


def dead_letter_of(
    record: SourceRecord,
    reason: str,
    detail: str,
    *,
    received_at: float,
    max_payload_bytes: int,
) -> DeadLetter:
    """The letter that records why ``record`` was rejected, with a bounded copy of it."""
    payload = b"" if record.value is None else record.value
    size = len(payload)
    digest = hashlib.sha256(payload).hexdigest()
    notes = []
    if size > max_payload_bytes:
        notes.append(
            f"dead letter keeps the first {max_payload_bytes} of {size} bytes, sha256 {digest}"
        )
    key = record.key
    if key is not None and len(key) > MAX_DEAD_LETTER_KEY_BYTES:
        notes.append(f"key cut to its first {MAX_DEAD_LETTER_KEY_BYTES} of {len(key)} bytes")
        key = key[:MAX_DEAD_LETTER_KEY_BYTES]
    return DeadLetter(
        source_topic=record.topic,
        payload=bytes(payload[:max_payload_bytes]),
        reason=str(reason),
        detail=f"{detail} ({'; '.join(notes)})" if notes else detail,
        source_partition=record.partition,
        source_offset=record.offset,
        key=None if key is None else bytes(key),
        received_at=received_at,
        payload_size=size,
        payload_sha256=digest,
    )


def dead_letter_headers(
    letter: DeadLetter, *, headers_only: bool = False
) -> list[tuple[str, bytes]]:
    """Kafka headers of a dead-letter message: why it was rejected, where it came from, and
    the size and SHA-256 of the whole original payload (the value may hold only its first
    bytes, or nothing in a headers-only letter).

    >>> letter = DeadLetter("interactions", b"{", "invalid_json", "payload: ...", 0, 41, b"u1")
    >>> headers = dict(dead_letter_headers(letter))
    >>> headers["reason"], headers["source_offset"], headers["payload_truncated"]
    (b'invalid_json', b'41', b'false')
    >>> dict(dead_letter_headers(letter, headers_only=True))["payload_truncated"]
    b'true'
    """
    truncated = letter.truncated or (headers_only and letter.original_size > 0)
    headers = {
        "reason": letter.reason,
        "detail": letter.detail or "",
        "source_topic": letter.source_topic,
        "source_partition": "" if letter.source_partition is None else str(letter.source_partition),
        "source_offset": "" if letter.source_offset is None else str(letter.source_offset),
        "received_at": "" if letter.received_at is None else repr(letter.received_at),
        "payload_size": str(letter.original_size),
        "payload_sha256": letter.original_sha256,
        "payload_truncated": "true" if truncated else "false",
    }
    return [(name, value.encode("utf-8")) for name, value in headers.items()]
