"""The control topic's contract: every message round-trips, hostile payloads are refused with
a reason and never raise, and the schedule and random-seek keys behave."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.events import Rejection, RejectionReason
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.trainer import random_key
from streamrec.wire.control import (
    ModelActivated,
    RunFinished,
    RunStarted,
    TrainCommand,
    encode_control,
    parse_control,
)
from trainer.schedule import ScheduleError, schedule_trigger

MESSAGES = [
    TrainCommand("r1", TrainingTrigger.OPERATOR, 1_700_000_000.0),
    TrainCommand("r2", TrainingTrigger.DRIFT, 1_700_000_000.5, "ADWIN: fell", force=True),
    RunStarted("r1", 12, 1_700_000_001.0),
    RunFinished("r1", 12, "rejected", "worse than active", 1_700_000_002.0),
    ModelActivated(7, 6, 1_700_000_003.0),
    ModelActivated(1, None, 1_700_000_003.0),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda message: type(message).__name__)
def test_every_message_round_trips(message: object) -> None:
    assert parse_control(encode_control(message)) == message  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (b"", RejectionReason.EMPTY_PAYLOAD, "payload: is empty"),
        (b"[]", RejectionReason.NOT_AN_OBJECT, "payload: must be a JSON object, got array"),
        (b'{"type": "train"}', RejectionReason.MISSING_FIELD, "schema_version: is required"),
        (
            b'{"schema_version": 1, "type": "reboot"}',
            RejectionReason.UNKNOWN_EVENT_TYPE,
            "type: 'reboot' is not one of train, run_started, run_finished, model_activated",
        ),
        (
            b'{"schema_version": 1, "type": "train", "request_id": "r", "trigger": "schedule",'
            b' "requested_at": 1}',
            RejectionReason.OUT_OF_RANGE,
            "trigger: 'schedule' is not one of operator, drift",
        ),
        (
            b'{"schema_version": 1, "type": "train", "request_id": "r", "trigger": "drift",'
            b' "requested_at": 1, "force": "yes"}',
            RejectionReason.WRONG_TYPE,
            "force: must be a boolean, got string",
        ),
        (
            b'{"schema_version": 1, "type": "model_activated", "version": 0, "at": 1}',
            RejectionReason.OUT_OF_RANGE,
            "version: must be at least 1",
        ),
    ],
)
def test_a_broken_message_is_refused_with_the_precise_reason(
    payload: bytes, reason: RejectionReason, detail: str
) -> None:
    assert parse_control(payload) == Rejection(reason, detail)


@given(st.binary(max_size=300) | st.builds(lambda text: text.encode(), st.text(max_size=200)))
def test_no_payload_makes_parsing_raise(payload: bytes) -> None:
    parsed = parse_control(payload)
    assert isinstance(parsed, Rejection | TrainCommand | RunStarted | RunFinished | ModelActivated)


@given(
    st.dictionaries(
        st.sampled_from(
            ["schema_version", "type", "request_id", "trigger", "requested_at", "reason", "force"]
        ),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    )
)
def test_no_train_message_shape_makes_parsing_raise(document: dict[str, object]) -> None:
    import json

    parsed = parse_control(json.dumps(document).encode())
    if isinstance(parsed, TrainCommand):
        assert parsed.trigger in (TrainingTrigger.OPERATOR, TrainingTrigger.DRIFT)
    else:
        assert isinstance(parsed, Rejection | RunStarted | RunFinished | ModelActivated)


@pytest.mark.parametrize(
    "schedule", ["interval:0", "interval:soon", "cron:0 3 * *", "cron:61 * * * *", "hourly:1"]
)
def test_a_bad_schedule_is_refused_naming_the_setting(schedule: str) -> None:
    with pytest.raises(ScheduleError, match=r"^trainer\.schedule "):
        schedule_trigger(schedule)


@pytest.mark.parametrize(
    ("low", "high"),
    [("u1", "u999"), ("pop-1", "pop-999999"), ("0001", "9999"), ("a", "zzzz"), ("Ω100", "Ω999")],
)
def test_seek_keys_spread_between_the_smallest_and_largest_id(low: str, high: str) -> None:
    random = np.random.default_rng(0)

    keys = [random_key(low, high, random) for _ in range(500)]

    assert all(low <= key <= high for key in keys)
    assert all("\x00" not in key for key in keys)
    # Spread: many distinct places to land, not a few bunched ones.
    assert len(set(keys)) > 100
