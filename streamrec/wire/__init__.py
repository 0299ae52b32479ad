"""Messages to bytes: the compact JSON of docs/events.md, for every message streamrec writes
(recommendations, control messages) and for the input events that replays and tests produce.
Reading untrusted input back is ``streamrec.validation``'s work.

>>> from streamrec.events import InteractionEvent
>>> encode_event(InteractionEvent("e1", "u1", "i9", "click", 1_700_000_000.0))
b'{"schema_version":1,"event_id":"e1","user_id":"u1","item_id":"i9","type":"click","timestamp":1700000000.0}'
"""

from __future__ import annotations

import json
import numbers
import re
from typing import Annotated, Any

import msgspec

from streamrec.events import SCHEMA_VERSION, InteractionEvent, ItemEvent

# C0 and C1 controls (NUL breaks PostgreSQL text, newlines break logs) and lone surrogates,
# which a JSON \ud800 escape gives but UTF-8 cannot store.
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
UNCLEAN = "contains a control character or an unpaired surrogate"
_CLEAN = f"^[^{FORBIDDEN.pattern[1:-1]}]*\\Z"  # not $, which allows a final newline
# Callers may hand over numpy scalars (scores, memberships); JSON knows plain numbers.
_ENCODER = msgspec.json.Encoder(
    enc_hook=lambda value: int(value) if isinstance(value, numbers.Integral) else float(value)
)


def clean_text(max_length: int) -> Any:
    """A text field's declared type: 1 to ``max_length`` characters, none forbidden."""
    return Annotated[str, msgspec.Meta(min_length=1, max_length=max_length, pattern=_CLEAN)]


def encode_message(message: object) -> bytes:
    """Compact UTF-8 JSON. Raises ValueError for NaN, Infinity or text that is not UTF-8."""
    encoded = _ENCODER.encode(message)
    if b"null" in encoded:  # msgspec writes NaN and Infinity as null: the strict encoder judges
        json.dumps(msgspec.to_builtins(message, enc_hook=_ENCODER.enc_hook), allow_nan=False)
    return encoded


def encode_event(event: InteractionEvent | ItemEvent) -> bytes:
    """The wire form of ``event``, unvalidated (streamrec.validation judges), its field names
    those of its message; absent and empty optional fields are left out."""
    present = {name: v for name, v in msgspec.to_builtins(event).items() if v not in (None, {})}
    return encode_message({"schema_version": SCHEMA_VERSION} | present)


encode_interaction = encode_item = encode_event
