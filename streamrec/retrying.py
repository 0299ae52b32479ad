"""Retrying through transient failures, written once: a policy (the delays and which errors
are worth another attempt) becomes a tenacity ``Retrying`` that stops when the operator asks.

The consumer retries a failing batch with it (a batch is one transaction, so running it again
is safe, and none is ever skipped), the trainer its control topic. An error that is not
transient (a bug) is raised at once, because retrying it would only hide it; a stop request
between attempts raises StopRequested.

>>> attempts = iter([ConnectionError("reset"), ConnectionError("reset"), "done"])
>>> def flaky():
...     outcome = next(attempts)
...     if isinstance(outcome, Exception):
...         raise outcome
...     return outcome
>>> slept = []
>>> retry_transient(flaky, is_transient_error, Backoff(0.1, 0.5), sleep=slept.append)
'done'
>>> slept
[0.1, 0.2]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity
from kafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from streamrec.config import TimeoutSettings
from streamrec.storage.errors import DatabaseUnavailableError

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


class StopRequested(Exception):
    """The operator asked the process to stop while an operation was still failing."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that grow by ``multiplier`` from ``initial_seconds`` up to ``maximum_seconds``.

    >>> Backoff.of_batches(TimeoutSettings())
    Backoff(initial_seconds=0.2, maximum_seconds=30.0, multiplier=2.0)
    """

    initial_seconds: float
    maximum_seconds: float
    multiplier: float = 2.0

    @classmethod
    def of_batches(cls, timeouts: TimeoutSettings) -> Backoff:
        """The consumer's delays between attempts at a failing batch."""
        return cls(
            timeouts.retry_initial_seconds,
            timeouts.retry_maximum_seconds,
            timeouts.retry_multiplier,
        )

    @classmethod
    def constant(cls, seconds: float) -> Backoff:
        """The same delay before every attempt."""
        return cls(seconds, seconds, 1.0)


def is_transient_error(error: BaseException) -> bool:
    """True for failures that a later attempt may not meet: a lost or refused connection, a
    deadlock or serialisation conflict, a broker that is briefly away."""
    if isinstance(error, KafkaError):
        return bool(getattr(error, "retriable", False)) or type(error).__name__ in {
            "KafkaTimeoutError",
            "NoBrokersAvailable",
            "KafkaConnectionError",
        }
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error,
        OperationalError  # lost connection, deadlock, serialisation failure, server shutdown
        | InterfaceError
        | PoolTimeoutError
        | DatabaseUnavailableError
        | ConnectionError
        | TimeoutError,
    )


def retrying(
    is_transient: Callable[[BaseException], bool],
    backoff: Backoff,
    *,
    sleep: Callable[[float], object],
    stop_requested: Callable[[], bool] = lambda: False,
    on_retry: Callable[[BaseException, float], None] | None = None,
    what: str = "the batch",
) -> tenacity.Retrying:
    """The tenacity ``Retrying`` of this policy: it calls an operation until it succeeds,
    sleeping with ``sleep`` between attempts that failed transiently, and logs each retry of
    ``what`` (then tells ``on_retry``)."""

    def stop(state: tenacity.RetryCallState) -> bool:
        return stop_requested()

    def stopped(state: tenacity.RetryCallState) -> None:
        raise StopRequested(f"stopped while retrying {what}") from _error(state)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error, delay = _error(state), state.upcoming_sleep
        logger.warning("transient failure, retrying %s in %.1f s: %s", what, delay, _line(error))
        if on_retry is not None:
            on_retry(error, delay)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        wait=tenacity.wait_exponential(
            multiplier=backoff.initial_seconds,
            exp_base=backoff.multiplier,
            max=backoff.maximum_seconds,
        ),
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=stopped,
        reraise=True,
    )


def retry_transient(
    operation: Callable[[], Result],
    is_transient: Callable[[BaseException], bool],
    backoff: Backoff,
    *,
    sleep: Callable[[float], object],
    stop_requested: Callable[[], bool] = lambda: False,
) -> Result:
    """Run ``operation`` once under ``retrying``."""
    return retrying(is_transient, backoff, sleep=sleep, stop_requested=stop_requested)(operation)


def _error(state: tenacity.RetryCallState) -> BaseException:
    error = state.outcome.exception() if state.outcome is not None else None
    assert error is not None, "tenacity retries and stops only after a failed attempt"
    return error


def _line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return f"{type(error).__name__}: {(text.splitlines() or [''])[0]}"
