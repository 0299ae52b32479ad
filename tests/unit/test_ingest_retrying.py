"""Retrying a failing batch: which errors are transient, the backoff, and stopping."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, UnknownTopicOrPartitionError
from sqlalchemy.exc import IntegrityError, OperationalError

from streamrec.retrying import Backoff, StopRequested, is_transient_error, retry_transient


class Failing:
    """Fails with each of ``errors`` in turn, then returns "applied"."""

    def __init__(self, *errors: Exception) -> None:
        self._errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self._errors:
            raise self._errors.pop(0)
        return "applied"


def lost_connection() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection"))


@pytest.mark.parametrize(
    "error",
    [lost_connection(), KafkaTimeoutError(), KafkaConnectionError(), ConnectionResetError()],
)
def test_lost_connections_and_timeouts_are_transient(error: Exception) -> None:
    assert is_transient_error(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        IntegrityError("INSERT", {}, Exception("duplicate key")),
        UnknownTopicOrPartitionError(),  # retriable in Kafka's table
    ],
)
def test_bugs_and_constraint_violations_are_not_transient(error: Exception) -> None:
    expected = bool(getattr(error, "retriable", False))
    assert is_transient_error(error) is expected


def test_transient_failures_are_retried_with_growing_delays_until_the_batch_applies() -> None:
    slept: list[float] = []
    operation = Failing(lost_connection(), lost_connection(), KafkaTimeoutError())
    result = retry_transient(
        operation, is_transient_error, Backoff(0.1, 0.3, 2.0), sleep=slept.append
    )
    assert result == "applied"
    assert operation.calls == 4
    assert slept == pytest.approx([0.1, 0.2, 0.3])


def test_an_error_that_is_not_transient_is_raised_at_once() -> None:
    operation = Failing(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        retry_transient(operation, is_transient_error, Backoff(0.2, 30.0), sleep=lambda _: None)
    assert operation.calls == 1


def test_a_stop_request_ends_the_retries_without_applying() -> None:
    operation = Failing(*[lost_connection() for _ in range(10)])
    with pytest.raises(StopRequested):
        retry_transient(
            operation,
            is_transient_error,
            Backoff(0.2, 30.0),
            sleep=lambda _: None,
            stop_requested=lambda: operation.calls >= 3,
        )
    assert operation.calls == 3
