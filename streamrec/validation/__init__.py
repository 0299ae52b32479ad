"""The event contract on the wire: strict parsing of input events and the output format.

``parse_interaction`` and ``parse_item`` turn bytes from the broker into domain events or a
Rejection (a stable reason code and a one-line detail) and never raise, whatever the bytes.
The ``encode_*`` functions write the same format; ``decode_recommendation`` reads the output
back for downstream readers and tests. The format is documented in docs/events.md.

>>> from streamrec.config import EventSettings
>>> rejection = parse_interaction(b"[1, 2]", EventSettings())
>>> rejection.reason, rejection.detail
(<RejectionReason.NOT_AN_OBJECT: 'not_an_object'>, 'payload: must be a JSON object, got array')
"""

from streamrec.validation.interactions import encode_interaction, parse_interaction
from streamrec.validation.items import encode_item, parse_item
from streamrec.validation.recommendations import decode_recommendation, encode_recommendation
from streamrec.validation.rejection import Rejection, RejectionReason

__all__ = [
    "Rejection",
    "RejectionReason",
    "decode_recommendation",
    "encode_interaction",
    "encode_item",
    "encode_recommendation",
    "parse_interaction",
    "parse_item",
]
