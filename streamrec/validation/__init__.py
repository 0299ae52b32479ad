"""The event contract on the wire (docs/events.md), each message declared once as a msgspec
Struct. ``parse_interaction`` and ``parse_item`` return a domain event or a Rejection (a
stable reason and a one-line detail), never raise, whatever the bytes.

>>> from streamrec.config import EventSettings
>>> parse_interaction(b"[1, 2]", EventSettings()).detail
'payload: must be a JSON object, got array'
"""

from streamrec.validation.input_events import (
    encode_event,
    encode_interaction,
    encode_item,
    parse_interaction,
    parse_item,
)
from streamrec.validation.recommendations import decode_recommendation, encode_recommendation
from streamrec.validation.rejection import Rejection, RejectionReason

__all__ = [
    "Rejection",
    "RejectionReason",
    "decode_recommendation",
    "encode_event",
    "encode_interaction",
    "encode_item",
    "encode_recommendation",
    "parse_interaction",
    "parse_item",
]
