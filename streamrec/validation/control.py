"""The control topic's messages: JSON objects with a ``type``, documented in docs/training.md.

- ``train``: start a run now (``streamrec train now``, or a consumer's drift detector);
- ``run_started`` and ``run_finished``: the trainer's answers to a ``train`` request;
- ``model_activated``: a version was flipped to active (consumers may react at once instead
  of at their next batch's registry check).

Parsing never raises: a message that breaks the contract comes back as a Rejection with the
same reason codes as input events.

>>> command = TrainCommand("r-1", TrainingTrigger.OPERATOR, requested_at=1_700_000_000.0,
...                        reason="new catalogue")
>>> parse_control(encode_control(command)) == command
True
>>> parse_control(b'{"schema_version": 1, "type": "train", "request_id": "r-1"}').detail
'trigger: is required'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from streamrec.storage.records import TrainingTrigger
from streamrec.validation.fields import (
    check_schema_version,
    read_id,
    read_integer,
    read_text,
    read_timestamp,
    required,
    wrong_type,
)
from streamrec.validation.json_payload import decode_object, encode_object, shown
from streamrec.validation.rejection import InvalidEvent, Rejection, RejectionReason

CONTROL_SCHEMA_VERSION = 1
MAX_CONTROL_BYTES = 16_384
MAX_REQUEST_ID_LENGTH = 128
MAX_REASON_LENGTH = 2_000
# Triggers a control message may ask for; scheduled runs come from the trainer's own clock.
REQUESTABLE_TRIGGERS = (TrainingTrigger.OPERATOR, TrainingTrigger.DRIFT)


class ControlType(StrEnum):
    TRAIN = "train"
    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"
    MODEL_ACTIVATED = "model_activated"


@dataclass(frozen=True, slots=True)
class TrainCommand:
    """Start a run at once. ``force`` ignores the minimum of new interactions."""

    request_id: str
    trigger: TrainingTrigger
    requested_at: float
    reason: str | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class RunStarted:
    request_id: str
    run_id: int
    at: float


@dataclass(frozen=True, slots=True)
class RunFinished:
    request_id: str
    run_id: int
    outcome: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class ModelActivated:
    version: int
    previous_version: int | None
    at: float


ControlMessage = TrainCommand | RunStarted | RunFinished | ModelActivated


def encode_control(message: ControlMessage) -> bytes:
    document: dict[str, Any] = {"schema_version": CONTROL_SCHEMA_VERSION}
    if isinstance(message, TrainCommand):
        document |= {
            "type": ControlType.TRAIN.value,
            "request_id": message.request_id,
            "trigger": message.trigger.value,
            "requested_at": message.requested_at,
            "reason": message.reason,
            "force": message.force,
        }
    elif isinstance(message, RunStarted):
        document |= {
            "type": ControlType.RUN_STARTED.value,
            "request_id": message.request_id,
            "run_id": message.run_id,
            "at": message.at,
        }
    elif isinstance(message, RunFinished):
        document |= {
            "type": ControlType.RUN_FINISHED.value,
            "request_id": message.request_id,
            "run_id": message.run_id,
            "outcome": message.outcome,
            "reason": message.reason,
            "at": message.at,
        }
    else:
        document |= {
            "type": ControlType.MODEL_ACTIVATED.value,
            "version": message.version,
            "previous_version": message.previous_version,
            "at": message.at,
        }
    return encode_object(document)


def parse_control(payload: bytes | None) -> ControlMessage | Rejection:
    """The message in ``payload``, or why it is not one."""
    try:
        document = decode_object(payload, MAX_CONTROL_BYTES)
        check_schema_version(document)
        kind = read_text(required(document, "type"), "type", 64)
        if kind == ControlType.TRAIN:
            return _train_command(document)
        if kind == ControlType.RUN_STARTED:
            return RunStarted(
                _request_id(document),
                read_integer(required(document, "run_id"), "run_id", 1),
                read_timestamp(required(document, "at"), "at"),
            )
        if kind == ControlType.RUN_FINISHED:
            return RunFinished(
                _request_id(document),
                read_integer(required(document, "run_id"), "run_id", 1),
                read_text(required(document, "outcome"), "outcome", 64),
                read_text(required(document, "reason"), "reason", MAX_REASON_LENGTH),
                read_timestamp(required(document, "at"), "at"),
            )
        if kind == ControlType.MODEL_ACTIVATED:
            previous = document.get("previous_version")
            return ModelActivated(
                read_integer(required(document, "version"), "version", 1),
                None if previous is None else read_integer(previous, "previous_version", 1),
                read_timestamp(required(document, "at"), "at"),
            )
        known = ", ".join(kind.value for kind in ControlType)
        raise InvalidEvent(
            RejectionReason.UNKNOWN_EVENT_TYPE, f"type: {shown(kind)} is not one of {known}"
        )
    except InvalidEvent as error:
        return error.rejection


def _train_command(document: dict[str, Any]) -> TrainCommand:
    trigger_text = read_text(required(document, "trigger"), "trigger", 32)
    allowed = {trigger.value: trigger for trigger in REQUESTABLE_TRIGGERS}
    if trigger_text not in allowed:
        raise InvalidEvent(
            RejectionReason.OUT_OF_RANGE,
            f"trigger: {shown(trigger_text)} is not one of {', '.join(allowed)}",
        )
    reason = document.get("reason")
    force = document.get("force", False)
    if not isinstance(force, bool):
        raise wrong_type("force", "a boolean", force)
    return TrainCommand(
        _request_id(document),
        allowed[trigger_text],
        read_timestamp(required(document, "requested_at"), "requested_at"),
        None if reason is None else read_text(reason, "reason", MAX_REASON_LENGTH),
        force,
    )


def _request_id(document: dict[str, Any]) -> str:
    return read_id(required(document, "request_id"), "request_id", MAX_REQUEST_ID_LENGTH)
