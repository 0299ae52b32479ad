"""Publishing dead letters so that no rejected record can stop its partition.

A dead letter is a bounded copy of the rejected record (``streamrec.services.dead_letters``),
so it fits the usual message limits; but a broker may still refuse it (a dead-letter topic
with a smaller ``max.message.bytes``, a policy). A refusal that retrying cannot fix must not
fail the batch, or every restart would read the same batch and fail again: the letter is
replaced by its headers alone (no key, empty value), and if that is refused too it is logged
and counted, and the ``dead_letters`` row stored with the batch is the record. Transient
errors (a broker away, a timeout) are raised, so the batch's publication is retried as a
whole, as for any other output.

The consumer loop publishes a batch's dead letters as the service built them, outbound
messages with their headers-only fallback (``streamrec.services.outbound``), through
``consumers.outbound_publishing``; ``DeadLetterPublisher`` is the same for letters in hand.

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

from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum

from consumers.outbound_publishing import (
    DROPPED,
    Delivery,
    MessageProducer,
    OutboundPublisher,
)
from streamrec.services.dead_letters import dead_letter_headers
from streamrec.services.outbound import HEADERS_ONLY, OutboundMessage, dead_letter_message
from streamrec.storage.records import DeadLetter


class DeadLetterFallback(StrEnum):
    """What reached the dead-letter topic in place of a letter the broker refused."""

    HEADERS_ONLY = HEADERS_ONLY  # the headers, with no key and an empty value
    DROPPED = DROPPED  # nothing: the dead_letters table row is the only record


OnRefusedDeadLetter = Callable[[DeadLetter, DeadLetterFallback, BaseException], None]


class DeadLetterPublisher:
    """Sends dead letters with the caller's other outputs, and settles each one after the
    caller's flush: acknowledged, replaced by its headers, or logged and counted."""

    def __init__(
        self,
        producer: MessageProducer,
        topic: str,
        *,
        timeout_seconds: float,
        on_refused: OnRefusedDeadLetter | None = None,
    ) -> None:
        self._topic = topic
        self._on_refused = on_refused
        self._publisher = OutboundPublisher(
            producer, timeout_seconds=timeout_seconds, on_refused=self._refused
        )
        # The letter behind each message in flight, for the report of a refused one.
        self._letters: dict[OutboundMessage, DeadLetter] = {}

    def send(self, letters: Iterable[DeadLetter]) -> list[Delivery]:
        """Queue each letter's copy; the caller flushes. Raises only transient errors."""
        messages = []
        for letter in letters:
            message = dead_letter_message(self._topic, letter)
            self._letters[message] = letter
            messages.append(message)
        return self._publisher.send(messages)

    def settle(self, deliveries: Sequence[Delivery]) -> None:
        """Wait for each delivery (after the caller's flush). A copy the broker refused is
        replaced by its headers, sent, flushed and awaited here; a refused headers-only
        letter is logged and reported. Raises only transient errors."""
        try:
            self._publisher.settle(deliveries)
        finally:
            for delivery in deliveries:
                self._letters.pop(delivery.message, None)

    def _refused(self, message: OutboundMessage, outcome: str, error: BaseException) -> None:
        if self._on_refused is not None:
            self._on_refused(self._letters[message], DeadLetterFallback(outcome), error)


__all__ = [
    "DeadLetterFallback",
    "DeadLetterPublisher",
    "OnRefusedDeadLetter",
    "dead_letter_headers",
]
