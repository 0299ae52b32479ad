"""The control topic's messages (docs/training.md), told apart by their ``type`` tag:
``train`` starts a run now; ``run_started`` and ``run_finished`` answer it; ``model_activated``
says a version became active. Refused with the input events' reasons.

>>> command = TrainCommand("r-1", TrainingTrigger.OPERATOR, 1_700_000_000.0, "new catalogue")
>>> parse_control(encode_control(command)) == command
True
>>> parse_control(b'{"schema_version": 1, "type": "train", "request_id": "r-1"}').detail
'trigger: is required'
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from streamrec.events import SCHEMA_VERSION, Rejection, RejectionReason
from streamrec.storage.records import TrainingTrigger
from streamrec.validation.decoding import InvalidEvent, converted, read_document, shown
from streamrec.wire import clean_text, encode_message
from streamrec.wire.events import LATEST_TIMESTAMP

# Scheduled runs come from the trainer's own clock, never from a message.
REQUESTABLE_TRIGGERS = (TrainingTrigger.OPERATOR, TrainingTrigger.DRIFT)
RequestId, Explanation = clean_text(128), clean_text(2_000)
Moment = Annotated[float, Meta(ge=0, le=LATEST_TIMESTAMP)]
Positive = Annotated[int, Meta(ge=1)]


class TrainCommand(Struct, frozen=True, tag="train", tag_field="type"):
    """Start a run at once. ``force`` ignores the minimum of new interactions."""

    request_id: RequestId
    trigger: TrainingTrigger
    requested_at: Moment
    reason: Explanation | None = None
    force: bool = False


class RunStarted(Struct, frozen=True, tag="run_started", tag_field="type"):
    request_id: RequestId
    run_id: Positive
    at: Moment


class RunFinished(Struct, frozen=True, tag="run_finished", tag_field="type"):
    request_id: RequestId
    run_id: Positive
    outcome: clean_text(64)
    reason: Explanation
    at: Moment


class ModelActivated(Struct, frozen=True, tag="model_activated", tag_field="type"):
    version: Positive
    previous_version: Positive | None
    at: Moment


ControlMessage = TrainCommand | RunStarted | RunFinished | ModelActivated
_TAGS = [kind.__struct_config__.tag for kind in ControlMessage.__args__]


def encode_control(message: ControlMessage) -> bytes:
    return encode_message({"schema_version": SCHEMA_VERSION} | msgspec.to_builtins(message))


def parse_control(payload: bytes | None) -> ControlMessage | Rejection:
    """The message in ``payload``, or why it is not one; never raises."""
    try:
        document = read_document(payload, max_bytes=16_384)
        if isinstance(kind := document.get("type"), str) and kind not in _TAGS:
            detail = f"type: {shown(kind)} is not one of {', '.join(_TAGS)}"
            raise InvalidEvent(RejectionReason.UNKNOWN_EVENT_TYPE, detail)
        message = converted(document, ControlMessage)
        if isinstance(message, TrainCommand) and message.trigger not in REQUESTABLE_TRIGGERS:
            allowed = ", ".join(REQUESTABLE_TRIGGERS)
            detail = f"trigger: {shown(message.trigger.value)} is not one of {allowed}"
            raise InvalidEvent(RejectionReason.OUT_OF_RANGE, detail)
    except InvalidEvent as error:
        return error.rejection
    return message
