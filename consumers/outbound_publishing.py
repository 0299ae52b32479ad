"""Sending a batch's outbound messages, so that no message with a fallback can stop a partition.

The service hands over a stored batch's outputs as data (``streamrec.services.outbound``);
this sends them in order, flushes, and waits for the broker's acknowledgements. Any error on
a plain message is raised, and the loop retries the whole publication when the error is
transient. A message with a ``Fallback`` (a dead letter) is settled on its own instead: if
the broker refuses it for a reason retrying cannot fix, its fallback is sent in its place,
and if that is refused too it is logged and reported, never raised, or every restart would
read the same batch and fail again. Transient errors (a broker away, a timeout) are raised
for these as well, so the publication is retried as a whole.

>>> from streamrec.services.outbound import OutboundMessage
>>> class Acknowledged:
...     def get(self, timeout=None):
...         return None
>>> class Producer:
...     sent = []
...     def send(self, topic, value=None, key=None, headers=None):
...         self.sent.append((topic, key, value))
...         return Acknowledged()
...     def flush(self, timeout=None):
...         pass
>>> producer = Producer()
>>> OutboundPublisher(producer, timeout_seconds=1.0).publish(
...     [OutboundMessage("recommendations", b"u1", b"{}"),
...      OutboundMessage("control", b"train", b"{}")])
>>> producer.sent
[('recommendations', b'u1', b'{}'), ('control', b'train', b'{}')]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streamrec.retrying import is_transient_error
from streamrec.services.outbound import OutboundMessage

logger = logging.getLogger(__name__)

# What reached the topic in place of a message whose fallback was refused too.
DROPPED = "dropped"

# (the refused message, what reached the topic instead: its fallback's name or DROPPED, why)
OnRefusedMessage = Callable[[OutboundMessage, str, BaseException], None]


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
class Delivery:
    """One message on its way: the producer's future, or the error that refused it at once.
    A fallback in flight names the message it ``replaces`` and why that one was
    ``refused``."""

    message: OutboundMessage
    future: Any | None
    error: BaseException | None = None
    replaces: OutboundMessage | None = None
    refused: BaseException | None = None

    @property
    def settled_alone(self) -> bool:
        """Whether a refusal of this delivery is settled here rather than raised."""
        return self.message.fallback is not None or self.replaces is not None


class OutboundPublisher:
    """Sends outbound messages, waits for them, and settles each message with a fallback:
    acknowledged, replaced by its fallback, or logged and reported to ``on_refused``."""

    def __init__(
        self,
        producer: MessageProducer,
        *,
        timeout_seconds: float,
        on_refused: OnRefusedMessage | None = None,
    ) -> None:
        self._producer = producer
        self._timeout_seconds = timeout_seconds
        self._on_refused = on_refused

    def publish(self, messages: Iterable[OutboundMessage]) -> None:
        """Send ``messages`` in order, flush, and wait until each is acknowledged or
        settled. Raises any error of a plain message, and transient errors of any."""
        deliveries = self.send(messages)
        self._producer.flush(timeout=self._timeout_seconds)
        self.settle(deliveries)

    def send(self, messages: Iterable[OutboundMessage]) -> list[Delivery]:
        """Queue each message; the caller flushes, then calls ``settle``."""
        return [
            self._send_settled(message)
            if message.fallback is not None
            else Delivery(message, self._send(message))
            for message in messages
        ]

    def settle(self, deliveries: Sequence[Delivery]) -> None:
        """Wait for each delivery (after a flush): plain messages first, each raising the
        broker's error if it was not acknowledged; then the messages with a fallback, one
        by one. A refused one is replaced by its fallback, which is sent, flushed and
        awaited here; a refused fallback is logged and reported."""
        for delivery in deliveries:
            if not delivery.settled_alone:
                assert delivery.future is not None
                delivery.future.get(timeout=self._timeout_seconds)
        replacements = []
        for delivery in deliveries:
            if not delivery.settled_alone:
                continue
            error = delivery.error or self._failure(delivery.future)
            if delivery.replaces is None:
                if error is not None:
                    replacements.append(self._send_fallback(delivery.message, error))
            else:
                self._report(delivery, error)
        if replacements:
            self._producer.flush(timeout=self._timeout_seconds)
            # Fallbacks are never replaced again, so this recursion ends here.
            self.settle(replacements)

    def _send(self, message: OutboundMessage) -> Any:
        return self._producer.send(
            message.topic,
            key=message.key,
            value=message.value,
            headers=list(message.headers) or None,
        )

    def _send_settled(
        self,
        message: OutboundMessage,
        *,
        replaces: OutboundMessage | None = None,
        refused: BaseException | None = None,
    ) -> Delivery:
        try:
            future = self._send(message)
        except Exception as error:
            # kafka-python refuses a message over its max_request_size here, before sending.
            if is_transient_error(error):
                raise
            return Delivery(message, None, error, replaces, refused)
        return Delivery(message, future, None, replaces, refused)

    def _send_fallback(self, message: OutboundMessage, refused: BaseException) -> Delivery:
        assert message.fallback is not None
        return self._send_settled(message.fallback.message, replaces=message, refused=refused)

    def _failure(self, future: Any) -> BaseException | None:
        try:
            future.get(timeout=self._timeout_seconds)
        except Exception as error:
            if is_transient_error(error):
                raise
            return error
        return None

    def _report(self, delivery: Delivery, fallback_error: BaseException | None) -> None:
        """Log and report a refused message whose fallback was acknowledged
        (``fallback_error`` None) or refused too."""
        message, refused = delivery.replaces, delivery.refused
        assert message is not None and message.fallback is not None and refused is not None
        fallback = message.fallback
        if fallback_error is None:
            logger.warning(
                "%s refused by the broker (%s); published %s",
                message.about or message.topic,
                _one_line(refused),
                fallback.description,
            )
            outcome = fallback.name
        else:
            logger.error(
                "%s not published: refused (%s), and %s refused too (%s); %s",
                message.about or message.topic,
                _one_line(refused),
                fallback.description,
                _one_line(fallback_error),
                fallback.if_refused,
            )
            outcome = DROPPED
        if self._on_refused is not None:
            self._on_refused(message, outcome, fallback_error or refused)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {(text.splitlines() or [''])[0][:200]}"
