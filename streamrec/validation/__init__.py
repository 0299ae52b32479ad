"""Untrusted bytes to input events: ``parse_interaction`` and ``parse_item`` return an event
or a Rejection (a stable reason and a one-line detail), never raise, whatever the bytes."""

from streamrec.events import Rejection, RejectionReason
from streamrec.validation.input_events import parse_interaction, parse_item, read_id

__all__ = ["Rejection", "RejectionReason", "parse_interaction", "parse_item", "read_id"]
