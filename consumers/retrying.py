"""Retrying a batch through transient failures: exponential backoff, and never a skipped batch.

A batch is applied in one database transaction, so after a failure nothing of it is stored and
running it again is safe. Only the operator's stop request ends the retries (the batch is then
left unapplied and is read again by the next run); an error that is not transient (a bug) is
raised at once, because retrying it would only hide it.

>>> import itertools
>>> backoff = Backoff(initial_seconds=0.1, maximum_seconds=0.5)
>>> [round(delay, 2) for delay in itertools.islice(backoff.delays(), 5)]
[0.1, 0.2, 0.4, 0.5, 0.5]
>>> attempts = iter([ConnectionError("reset"), ConnectionError("reset"), "done"])
>>> def flaky():
...     outcome = next(attempts)
...     if isinstance(outcome, Exception):
...         raise outcome
...     return outcome
>>> retry_transient(flaky, is_transient_error, backoff, sleep=lambda seconds: None)
'done'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from kafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from streamrec.storage.errors import DatabaseUnavailableError

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


class StopRequested(Exception):
    """The operator asked the process to stop while a batch was still failing."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that double from ``initial_seconds`` up to ``maximum_seconds``."""

    initial_seconds: float = 0.2
    maximum_seconds: float = 30.0
    multiplier: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial_seconds
        while True:
            yield delay
            delay = min(self.maximum_seconds, delay * self.multiplier)


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


def retry_transient(
    operation: Callable[[], Result],
    is_transient: Callable[[BaseException], bool],
    backoff: Backoff,
    *,
    sleep: Callable[[float], None],
    stop_requested: Callable[[], bool] = lambda: False,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> Result:
    """Run ``operation`` until it succeeds, sleeping between attempts that fail transiently.

    Raises the error itself if it is not transient, and StopRequested if the operator asks to
    stop between attempts.
    """
    for delay in backoff.delays():
        try:
            return operation()
        except Exception as error:
            if not is_transient(error):
                raise
            if stop_requested():
                raise StopRequested("stopped while retrying a failing batch") from error
            logger.warning(
                "transient failure, retrying the batch in %.1f s: %s",
                delay,
                _one_line(error),
            )
            if on_retry is not None:
                on_retry(error, delay)
            sleep(delay)
    raise AssertionError("unreachable: the backoff delays never end")


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return f"{type(error).__name__}: {(text.splitlines() or [''])[0]}"
