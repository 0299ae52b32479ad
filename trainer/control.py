"""The control topic on Kafka: publishing control messages, the trainer's listener for
``train`` commands, and waiting for the answer to a request (``streamrec train now --wait``).

The trainer reads the topic in a consumer group of its own (``<consumer_group>-trainer``), so
with two trainer processes each command reaches one of them; the run lock decides anyway.
Offsets are committed once a poll's commands are handed over; commands older than
``max_command_age_seconds`` (a trainer that was down for a while) are dropped with a log line
rather than run long after they were asked for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from streamrec.config import Settings
from streamrec.events import Rejection
from streamrec.wire.control import (
    ControlMessage,
    ModelActivated,
    RunFinished,
    RunStarted,
    TrainCommand,
    encode_control,
    parse_control,
)

logger = logging.getLogger(__name__)

MAX_COMMAND_AGE_SECONDS = 600.0
# Every train command goes to one partition, so commands are handled in the order sent.
TRAIN_KEY = b"train"
MODEL_KEY = b"model"


def trainer_group(settings: Settings) -> str:
    return f"{settings.kafka.consumer_group}-trainer"


def activation_announcer(
    settings: Settings, on_failure: Callable[[Exception], None]
) -> Callable[[int, int | None], None]:
    """A ``RunHooks.on_activated`` that announces a flip on the control topic, best effort:
    consumers also poll the registry, so a failure is only told to ``on_failure``
    (``streamrec models promote|rollback`` and the dashboard's roll back)."""

    def announce(version: int, previous: int | None) -> None:
        try:
            publisher = ControlPublisher(settings)
            try:
                publisher.publish(ModelActivated(version, previous, time.time()))
            finally:
                publisher.close()
        except Exception as error:
            on_failure(error)

    return announce


class ControlPublisher:
    """Publishes control messages; each ``publish`` waits for the broker's acknowledgement."""

    def __init__(self, settings: Settings, producer: KafkaProducer | None = None) -> None:
        from streamrec.kafka import create_producer

        self._topic = settings.topics.control
        self._producer = producer or create_producer(settings)
        self._timeout_seconds = settings.timeouts.publish_seconds

    def publish(self, message: ControlMessage) -> None:
        key = _key_of(message)
        future = self._producer.send(self._topic, key=key, value=encode_control(message))
        self._producer.flush(timeout=self._timeout_seconds)
        future.get(timeout=self._timeout_seconds)

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_seconds)


class ControlListener:
    """Hands each fresh ``train`` command of the control topic to ``on_command``; other
    message types are the trainer's own output and are skipped."""

    def __init__(
        self,
        settings: Settings,
        on_command: Callable[[TrainCommand], None],
        *,
        consumer: KafkaConsumer | None = None,
        clock: Callable[[], float] = time.time,
        max_command_age_seconds: float = MAX_COMMAND_AGE_SECONDS,
        on_rejected: Callable[[Rejection], None] | None = None,
    ) -> None:
        from streamrec.kafka import create_consumer

        self._on_command = on_command
        self._on_rejected = on_rejected
        self._clock = clock
        self._max_age = max_command_age_seconds
        self._poll_ms = settings.timeouts.control_poll_ms
        self._consumer = consumer or create_consumer(
            settings, settings.topics.control, group_id=trainer_group(settings)
        )

    def poll_once(self) -> int:
        """Poll once (waiting at most ``timeouts.control_poll_ms``); returns how many
        commands were handed over."""
        handed = 0
        polled = self._consumer.poll(timeout_ms=self._poll_ms)
        for records in polled.values():
            for record in records:
                message = parse_control(record.value)
                if isinstance(message, Rejection):
                    logger.warning(
                        "control message at %s[%d]@%d refused: %s: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        message.reason.value,
                        message.detail,
                    )
                    if self._on_rejected is not None:
                        self._on_rejected(message)
                    continue
                if not isinstance(message, TrainCommand):
                    continue
                age = self._clock() - message.requested_at
                if age > self._max_age:
                    logger.warning(
                        "train request %s dropped: asked %.0f s ago (limit %.0f s)",
                        message.request_id,
                        age,
                        self._max_age,
                    )
                    continue
                self._on_command(message)
                handed += 1
        if polled:
            self._consumer.commit()
        return handed

    def close(self) -> None:
        self._consumer.close(autocommit=False)


@contextmanager
def control_replies(settings: Settings) -> Iterator[ControlReplies]:
    """Read the control topic from its current end: open it BEFORE sending a request, so
    that no answer can slip by in between."""
    from streamrec.kafka import create_consumer

    consumer = create_consumer(settings, group_id=None)
    try:
        topic = settings.topics.control
        partitions = [
            TopicPartition(topic, partition)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for partition in partitions:
            consumer.position(partition)  # resolves the end offset now, before the request
        yield ControlReplies(consumer, settings.timeouts.control_poll_ms)
    finally:
        consumer.close(autocommit=False)


class ControlReplies:
    """The answers to one request, read from where ``control_replies`` positioned them."""

    def __init__(self, consumer: KafkaConsumer, poll_ms: int) -> None:
        self._consumer = consumer
        self._poll_ms = poll_ms

    def wait_for(
        self,
        request_id: str,
        timeout_seconds: float,
        on_started: Callable[[RunStarted], None] | None = None,
    ) -> RunFinished | None:
        """The ``run_finished`` answer to ``request_id``, or None after ``timeout_seconds``."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            for records in self._consumer.poll(timeout_ms=self._poll_ms).values():
                for record in records:
                    message = parse_control(record.value)
                    if isinstance(message, RunStarted) and message.request_id == request_id:
                        if on_started is not None:
                            on_started(message)
                    elif isinstance(message, RunFinished) and message.request_id == request_id:
                        return message
        return None


def _key_of(message: ControlMessage) -> bytes:
    if isinstance(message, TrainCommand):
        return TRAIN_KEY
    if isinstance(message, ModelActivated):
        return MODEL_KEY
    return message.request_id.encode("utf-8")
