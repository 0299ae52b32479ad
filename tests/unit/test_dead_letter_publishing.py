"""Publishing dead letters: a letter the broker refuses for good is replaced by its headers,
then dropped with a log line and a count, one letter at a time; transient errors still
propagate, so the batch's publication is retried."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from consumers import ConsumerHooks
from consumers.dead_letter_publishing import (
    DeadLetterFallback,
    DeadLetterPublisher,
    dead_letter_headers,
)
from streamrec.observability import ConsumerMetrics, Heartbeat
from streamrec.observability.wiring import observed_hooks
from streamrec.services.batch import SourceRecord
from streamrec.services.dead_letters import dead_letter_of
from streamrec.storage.records import DeadLetter

TOPIC = "dead-letters"


@dataclass
class Sent:
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


class Outcome:
    """A producer future that has completed: acknowledged, or failed with ``error``."""

    def __init__(self, error: BaseException | None) -> None:
        self._error = error

    def get(self, timeout: float | None = None) -> None:
        if self._error is not None:
            raise self._error


# Decides the fate of a message: None to accept it, or the error and whether it is raised
# by send() itself (kafka-python's own size check) or by the future (the broker's answer).
Verdict = Callable[[Sent], tuple[BaseException, bool] | None]


@dataclass
class FakeProducer:
    """Stands in for kafka-python's producer, refusing what ``verdict`` says."""

    verdict: Verdict
    sent: list[Sent] = field(default_factory=list)
    flushes: int = 0

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Outcome:
        assert topic == TOPIC
        message = Sent(key, value, {name: data.decode() for name, data in headers or []})
        refusal = self.verdict(message)
        if refusal is not None and refusal[1]:
            raise refusal[0]
        self.sent.append(message)
        return Outcome(None if refusal is None else refusal[0])

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1


def letter(offset: int, payload: bytes, kept: int = 65_536) -> DeadLetter:
    record = SourceRecord("interactions", 2, offset, f"u{offset}".encode(), payload)
    return dead_letter_of(
        record, "invalid_json", "payload: ...", received_at=1.0, max_payload_bytes=kept
    )


def larger_than(limit: int, *, at_send: bool) -> Verdict:
    """Refuse any message whose value is longer than ``limit`` bytes, as too large."""

    def verdict(message: Sent) -> tuple[BaseException, bool] | None:
        if len(message.value or b"") > limit:
            return MessageSizeTooLargeError(f"{len(message.value or b'')} bytes"), at_send
        return None

    return verdict


def publish(
    producer: FakeProducer, letters: list[DeadLetter]
) -> list[tuple[DeadLetter, DeadLetterFallback, BaseException]]:
    refused: list[tuple[DeadLetter, DeadLetterFallback, BaseException]] = []
    publisher = DeadLetterPublisher(
        producer,
        TOPIC,
        timeout_seconds=1.0,
        on_refused=lambda *call: refused.append(call),
    )
    deliveries = publisher.send(letters)
    producer.flush()
    publisher.settle(deliveries)
    return refused


def test_accepted_letters_carry_their_copy_and_its_description() -> None:
    producer = FakeProducer(lambda message: None)
    payload = b"{" * 100
    assert publish(producer, [letter(7, payload)]) == []
    [sent] = producer.sent
    assert (sent.key, sent.value) == (b"u7", payload)
    assert sent.headers == {
        "reason": "invalid_json",
        "detail": "payload: ...",
        "source_topic": "interactions",
        "source_partition": "2",
        "source_offset": "7",
        "received_at": "1.0",
        "payload_size": "100",
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_truncated": "false",
    }


def test_a_cut_copy_says_so_in_its_headers() -> None:
    payload = b"x" * 1_100_000
    headers = dict(dead_letter_headers(letter(0, payload)))
    assert headers["payload_size"] == b"1100000"
    assert headers["payload_sha256"] == hashlib.sha256(payload).hexdigest().encode()
    assert headers["payload_truncated"] == b"true"


@pytest.mark.parametrize("at_send", [True, False], ids=["by-the-producer", "by-the-broker"])
def test_a_refused_copy_is_replaced_by_its_headers_only(
    at_send: bool, caplog: pytest.LogCaptureFixture
) -> None:
    producer = FakeProducer(larger_than(1_000, at_send=at_send))
    small, large, after = letter(1, b"{"), letter(2, b"[" * 5_000), letter(3, b"}")
    with caplog.at_level(logging.WARNING, logger="consumers.dead_letter_publishing"):
        refused = publish(producer, [small, large, after])
    assert [(call[0], call[1]) for call in refused] == [(large, DeadLetterFallback.HEADERS_ONLY)]
    assert isinstance(refused[0][2], MessageSizeTooLargeError)
    accepted = [message for message in producer.sent if message.value != b"[" * 5_000]
    assert [(message.key, message.value) for message in accepted] == [
        (b"u1", b"{"),
        (b"u3", b"}"),
        (None, b""),
    ]
    headers_only = accepted[-1].headers
    assert headers_only["source_offset"] == "2"
    assert headers_only["payload_size"] == "5000"
    assert headers_only["payload_sha256"] == hashlib.sha256(b"[" * 5_000).hexdigest()
    assert headers_only["payload_truncated"] == "true"
    [line] = caplog.records
    assert line.levelno == logging.WARNING
    assert "interactions[2]@2" in line.getMessage()
    assert "headers only" in line.getMessage()


def test_a_letter_refused_even_as_headers_is_dropped_with_one_error_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse_offset_5(message: Sent) -> tuple[BaseException, bool] | None:
        if message.headers["source_offset"] == "5":
            return MessageSizeTooLargeError("policy"), False
        return None

    producer = FakeProducer(refuse_offset_5)
    doomed, fine = letter(5, b"{"), letter(6, b"{")
    with caplog.at_level(logging.WARNING, logger="consumers.dead_letter_publishing"):
        refused = publish(producer, [doomed, fine])
    assert [(call[0], call[1]) for call in refused] == [(doomed, DeadLetterFallback.DROPPED)]
    [line] = caplog.records
    assert line.levelno == logging.ERROR
    assert "dead_letters table keeps it" in line.getMessage()
    # Its copy, then its headers, were tried once each; nothing loops.
    assert [message.headers["source_offset"] for message in producer.sent] == ["5", "6", "5"]


def test_a_transient_error_is_raised_so_that_publication_is_retried() -> None:
    producer = FakeProducer(lambda message: (KafkaTimeoutError("no answer"), False))
    with pytest.raises(KafkaTimeoutError):
        publish(producer, [letter(1, b"{")])


def test_a_transient_error_at_send_is_raised_too() -> None:
    producer = FakeProducer(lambda message: (KafkaTimeoutError("no metadata"), True))
    with pytest.raises(KafkaTimeoutError):
        publish(producer, [letter(1, b"{")])


def test_refused_letters_are_counted_by_fallback() -> None:
    metrics = ConsumerMetrics()
    seen: list[str] = []
    hooks = observed_hooks(
        metrics,
        Heartbeat(),
        ConsumerHooks(on_dead_letter_refused=lambda letter, fallback, error: seen.append(fallback)),
    )
    assert hooks.on_dead_letter_refused is not None
    producer = FakeProducer(larger_than(0, at_send=False))  # refuses any non-empty value
    publisher = DeadLetterPublisher(
        producer, TOPIC, timeout_seconds=1.0, on_refused=hooks.on_dead_letter_refused
    )
    publisher.settle(publisher.send([letter(1, b"{"), letter(2, b"")]))
    sample = metrics.sample("streamrec_dead_letters_refused_total", fallback="headers_only")
    assert sample == 1.0
    assert seen == [DeadLetterFallback.HEADERS_ONLY]
