"""Publishing dead letters so that no rejected record can stop its partition.

A dead letter is a bounded copy of the rejected record (``streamrec.services.dead_letters``),
so it fits the usual message limits; but a broker may still refuse it (a dead-letter topic
with a smaller ``max.message.bytes``, a policy). A refusal that retrying cannot fix must not
fail the batch, or every restart would read the same batch and fail again: the letter is
replaced by its headers alone (no key, empty value), and if that is refused too it is logged
and counted, and the ``dead_letters`` row stored with the batch is the record. Transient
errors (a broker away, a timeout) are raised, so the batch's publication is retried as a
whole, as for any other output.

>>> from streamrec.storage.records import DeadLetter
>>> letter = DeadLetter("interactions", b"{", "invalid_json", "payload: ...", 0, 41, b"u1", 5.0)
>>> headers = dict(dead_letter_headers(letter))
>>> headers["reason"], headers["source_offset"], headers["payload_size"]
(b'invalid_json', b'41', b'1')
>>> headers["payload_truncated"], dict(dead_letter_headers(letter, headers_only=True))[
...     "payload_truncated"]
(b'false', b'true')
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from streamrec.retrying import is_transient_error
from streamrec.storage.records import DeadLetter

logger = logging.getLogger(__name__)


class DeadLetterFallback(StrEnum):
    """What reached the dead-letter topic in place of a letter the broker refused."""

    HEADERS_ONLY = "headers_only"  # the headers, with no key and an empty value
    DROPPED = "dropped"  # nothing: the dead_letters table row is the only record


OnRefusedDeadLetter = Callable[[DeadLetter, DeadLetterFallback, BaseException], None]


class MessageProducer(Protocol):
    """The part of kafka-python's KafkaProducer that publishing uses."""

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class DeadLetterDelivery:
    """One letter on its way: the producer's future, or the error that refused it at once.
    ``refused_copy`` is set on a headers-only letter: why its full copy was refused."""

    letter: DeadLetter
    future: Any | None
    error: BaseException | None = None
    refused_copy: BaseException | None = None


def dead_letter_headers(
    letter: DeadLetter, *, headers_only: bool = False
) -> list[tuple[str, bytes]]:
    """Kafka headers of a dead-letter message: why it was rejected, where it came from, and
    the size and SHA-256 of the whole original payload (the value may hold only its first
    bytes, or nothing in a headers-only letter)."""
    truncated = letter.truncated or (headers_only and letter.original_size > 0)
    headers = {
        "reason": letter.reason,
        "detail": letter.detail or "",
        "source_topic": letter.source_topic,
        "source_partition": "" if letter.source_partition is None else str(letter.source_partition),
        "source_offset": "" if letter.source_offset is None else str(letter.source_offset),
        "received_at": "" if letter.received_at is None else repr(letter.received_at),
        "payload_size": str(letter.original_size),
        "payload_sha256": letter.original_sha256,
        "payload_truncated": "true" if truncated else "false",
    }
    return [(name, value.encode("utf-8")) for name, value in headers.items()]


class DeadLetterPublisher:
    """Sends dead letters with the batch's other outputs, and settles each one after the
    caller's flush: acknowledged, replaced by its headers, or logged and counted."""

    def __init__(
        self,
        producer: MessageProducer,
        topic: str,
        *,
        timeout_seconds: float,
        on_refused: OnRefusedDeadLetter | None = None,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_seconds = timeout_seconds
        self._on_refused = on_refused

    def send(self, letters: Iterable[DeadLetter]) -> list[DeadLetterDelivery]:
        """Queue each letter's copy; the caller flushes. Raises only transient errors."""
        return [self._send(letter, refused_copy=None) for letter in letters]

    def settle(self, deliveries: Sequence[DeadLetterDelivery]) -> None:
        """Wait for each delivery (after the caller's flush). A copy the broker refused is
        replaced by its headers, sent, flushed and awaited here; a refused headers-only
        letter is logged and reported. Raises only transient errors."""
        replacements = []
        for delivery in deliveries:
            error = delivery.error or self._failure(delivery.future)
            if delivery.refused_copy is None:
                if error is not None:
                    replacements.append(self._send(delivery.letter, refused_copy=error))
            elif error is None:
                self._report(
                    delivery.letter, DeadLetterFallback.HEADERS_ONLY, delivery.refused_copy
                )
            else:
                self._report(
                    delivery.letter, DeadLetterFallback.DROPPED, delivery.refused_copy, error
                )
        if replacements:
            self._producer.flush(timeout=self._timeout_seconds)
            # Headers-only letters are never replaced again, so this recursion ends here.
            self.settle(replacements)

    def _send(
        self, letter: DeadLetter, *, refused_copy: BaseException | None
    ) -> DeadLetterDelivery:
        headers_only = refused_copy is not None
        try:
            future = self._producer.send(
                self._topic,
                key=None if headers_only else letter.key,
                value=b"" if headers_only else letter.payload,
                headers=dead_letter_headers(letter, headers_only=headers_only),
            )
        except Exception as error:
            # kafka-python refuses a message over its max_request_size here, before sending.
            if is_transient_error(error):
                raise
            return DeadLetterDelivery(letter, None, error, refused_copy)
        return DeadLetterDelivery(letter, future, None, refused_copy)

    def _failure(self, future: Any) -> BaseException | None:
        try:
            future.get(timeout=self._timeout_seconds)
        except Exception as error:
            if is_transient_error(error):
                raise
            return error
        return None

    def _report(
        self,
        letter: DeadLetter,
        fallback: DeadLetterFallback,
        copy_error: BaseException,
        headers_error: BaseException | None = None,
    ) -> None:
        source = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        if headers_error is None:
            logger.warning(
                "dead letter of %s (%s) refused by the broker (%s); published its headers only",
                source,
                letter.reason,
                _one_line(copy_error),
            )
        else:
            logger.error(
                "dead letter of %s (%s) not published: refused (%s), and its headers too (%s); "
                "the dead_letters table keeps it",
                source,
                letter.reason,
                _one_line(copy_error),
                _one_line(headers_error),
            )
        if self._on_refused is not None:
            self._on_refused(letter, fallback, headers_error or copy_error)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {(text.splitlines() or [''])[0][:200]}"
