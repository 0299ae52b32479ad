"""The Kafka poll loop: batches in, one transaction per batch, recommendations out.

Per batch: apply it through the ingest service (validation, state, offsets: one database
transaction), then publish its recommendations and dead letters (and, when the prequential
hit rate fell, a ``train`` command with trigger ``drift`` on the control topic), flush,
record in the database that the outputs were acknowledged, and commit the Kafka offsets. The
database holds two offsets per partition: the stored one (records below it were applied; the
service skips them) and the acknowledged one (records below it had their outputs published).
On start and on every partition assignment the consumer resumes at the lower of the two, so a
batch that was stored but whose outputs a crash dropped is read again, as already applied, and
its users' current recommendations are published again. A crash at any point therefore loses
nothing and applies nothing twice (state exactly once; outputs at least once, idempotent by
key). Kafka's own committed offsets serve lag monitoring only.

Transient broker and database failures retry the whole batch with exponential backoff; the
loop never moves past a batch it could not apply. SIGTERM and SIGINT finish the current batch,
commit, and leave the group.

>>> Stage.STORED.value
'stored'
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import FrameType
from typing import Any, Protocol
from uuid import uuid4

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.dead_letter_publishing import DeadLetterPublisher, OnRefusedDeadLetter
from streamrec.config import Settings
from streamrec.drift import DriftSignal
from streamrec.offsets import (
    OffsetReset,
    OffsetResetChoice,
    OutOfRange,
    StoredOffsets,
    StoredOffsetsOutsideLogError,
    find_outside_log,
)
from streamrec.retrying import Backoff, StopRequested, is_transient_error, retrying
from streamrec.services.batch import BatchCounters, BatchResult, SourceRecord
from streamrec.storage.records import TrainingTrigger
from streamrec.validation import encode_recommendation
from streamrec.validation.control import TrainCommand, encode_control

logger = logging.getLogger(__name__)

# How long publishing may wait for the broker to acknowledge a batch's messages.
PUBLISH_TIMEOUT_SECONDS = 30.0


class BatchApplier(Protocol):
    """What the loop needs from the service layer (streamrec.services.ingest.IngestService)."""

    def apply(self, records: Sequence[SourceRecord]) -> BatchResult: ...

    def stored_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], StoredOffsets]: ...

    def reset_offsets(
        self, outside: Sequence[OutOfRange], choice: OffsetResetChoice
    ) -> list[OffsetReset]: ...

    def acknowledge(self, next_offsets: Mapping[tuple[str, int], int]) -> None: ...


class Stage(StrEnum):
    """Points in a batch's life, reported to ``ConsumerHooks.on_stage``."""

    POLLED = "polled"
    STORED = "stored"  # the database transaction committed
    PUBLISHED = "published"  # outputs acknowledged by the broker, and that recorded
    COMMITTED = "committed"  # Kafka offsets committed


@dataclass(frozen=True, slots=True)
class BatchTiming:
    """Wall-clock times (seconds since the epoch) of one batch's stages."""

    polled_at: float
    stored_at: float
    published_at: float
    committed_at: float


@dataclass(slots=True)
class ConsumerHooks:
    """Callbacks for observers (metrics, progress, tests); each is optional.

    ``on_stage(stage, batch_number)`` runs at every stage of every batch; ``on_batch`` after a
    batch is committed, with the batch's records; ``on_retry`` before each backoff sleep;
    ``on_idle`` after an empty poll; ``on_assignment`` with the partitions owned after every
    rebalance (empty while one is in progress); ``on_lag`` after each batch, with the records
    still behind the broker's end of each partition of the batch; ``on_dead_letter_refused``
    when the broker refused a dead letter for good (``consumers.dead_letter_publishing``).
    """

    on_stage: Callable[[Stage, int], None] | None = None
    on_batch: Callable[[BatchResult, BatchTiming, Sequence[SourceRecord]], None] | None = None
    on_retry: Callable[[BaseException, float], None] | None = None
    on_idle: Callable[[], None] | None = None
    on_assignment: Callable[[frozenset[tuple[str, int]]], None] | None = None
    on_lag: Callable[[dict[tuple[str, int], int]], None] | None = None
    on_dead_letter_refused: OnRefusedDeadLetter | None = None


@dataclass(slots=True)
class RunSummary:
    """What one run of the loop did, and why it ended."""

    batches: int = 0
    counters: BatchCounters = field(default_factory=BatchCounters)
    stopped_because: str = ""


class InteractionConsumer:
    """The loop over an already-built Kafka consumer and producer (see ``run_consumer``).

    ``consumer`` must not be subscribed yet: ``run`` subscribes it with the listener that
    seeks each assigned partition to its stored offset. An assigned partition whose stored
    offset lies outside its log stops the loop with ``StoredOffsetsOutsideLogError``, unless
    ``offset_reset`` says where to resume it (the operator's ``--reset-offsets``).
    """

    def __init__(
        self,
        settings: Settings,
        applier: BatchApplier,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        *,
        hooks: ConsumerHooks | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        offset_reset: OffsetResetChoice | None = None,
    ) -> None:
        self._settings = settings
        self._applier = applier
        self._consumer = consumer
        self._producer = producer
        self._hooks = hooks or ConsumerHooks()
        self._dead_letters = DeadLetterPublisher(
            producer,
            settings.topics.dead_letters,
            timeout_seconds=PUBLISH_TIMEOUT_SECONDS,
            on_refused=self._hooks.on_dead_letter_refused,
        )
        self._clock = clock
        self._stop = threading.Event()
        self._retrying = retrying(
            is_transient_error,
            backoff or Backoff(),
            sleep=self._stop.wait,
            stop_requested=self._stop.is_set,
            on_retry=self._hooks.on_retry,
        )
        self._partitions_to_seek: set[TopicPartition] = set()
        self._topics = [settings.topics.interactions, settings.topics.items]
        self._offset_reset = offset_reset

    def request_stop(self) -> None:
        """Finish the batch in hand, commit, and leave (safe from a signal handler)."""
        self._stop.set()

    def run(
        self, *, max_records: int | None = None, idle_exit_seconds: float | None = None
    ) -> RunSummary:
        """Consume until stopped, until ``max_records`` records are processed, or until no
        record arrived for ``idle_exit_seconds`` (counted from the first assignment)."""
        summary = RunSummary()
        self._consumer.subscribe(self._topics, listener=_SeekToResumeOffsets(self))
        idle_since: float | None = None
        try:
            while not self._stop.is_set():
                remaining = None if max_records is None else max_records - summary.counters.records
                if remaining is not None and remaining <= 0:
                    summary.stopped_because = "max_records"
                    break
                records = self._poll(remaining)
                if not records:
                    if idle_since is None and self._consumer.assignment():
                        idle_since = self._clock()
                    if self._hooks.on_idle is not None:
                        self._hooks.on_idle()
                    if (
                        idle_exit_seconds is not None
                        and idle_since is not None
                        and self._clock() - idle_since >= idle_exit_seconds
                    ):
                        summary.stopped_because = "idle"
                        break
                    continue
                summary.batches += 1
                result = self._process(records, summary.batches)
                summary.counters.add(result.counters)
                idle_since = self._clock()
            else:
                summary.stopped_because = "stop requested"
        except StopRequested:
            summary.stopped_because = "stop requested during retries"
        finally:
            # autocommit=False: the offsets that matter are in the database, and the last
            # batch's Kafka offsets are committed already.
            self._consumer.close(autocommit=False)
        logger.info(
            "consumer stopped (%s) after %d batches, %d records",
            summary.stopped_because,
            summary.batches,
            summary.counters.records,
        )
        return summary

    def seek_when_polled(self, partitions: Iterable[TopicPartition]) -> None:
        """Position ``partitions`` where they resume (``StoredOffsets.resume``) right after
        the poll in progress returns, dropping what that poll fetched from them.

        Called from the rebalance listener, which kafka-python runs on its network thread:
        the database is read in the loop instead, so a slow database cannot hold up the
        group's heartbeats, and a failed read is retried like any other.
        """
        self._partitions_to_seek.update(partitions)

    # The loop's steps --------------------------------------------------------------------

    def _poll(self, remaining: int | None) -> list[SourceRecord]:
        limit = self._settings.kafka.max_poll_records
        if remaining is not None:
            limit = min(limit, remaining)
        polled = self._retry(
            lambda: self._consumer.poll(
                timeout_ms=self._settings.kafka.poll_timeout_ms, max_records=limit
            )
        )
        if self._partitions_to_seek:
            positioned = set(self._partitions_to_seek)
            self._retry(self._seek_pending)
            # These partitions were positioned again: their records come back from there.
            polled = {
                partition: records
                for partition, records in polled.items()
                if partition not in positioned
            }
        return [_source_record(record) for records in polled.values() for record in records]

    def _process(self, records: list[SourceRecord], batch_number: int) -> BatchResult:
        polled_at = self._clock()
        self._report(Stage.POLLED, batch_number)
        result = self._retry(lambda: self._applier.apply(records))
        stored_at = self._clock()
        self._report(Stage.STORED, batch_number)
        # Made once, so that a retried publish repeats the same request ids.
        commands = [drift_train_command(signal) for signal in result.drift_signals]
        self._retry(lambda: self._publish(result, commands))
        self._retry(lambda: self._applier.acknowledge(result.next_offsets))
        published_at = self._clock()
        self._report(Stage.PUBLISHED, batch_number)
        self._commit_kafka_offsets(result.next_offsets)
        committed_at = self._clock()
        self._report(Stage.COMMITTED, batch_number)
        if self._hooks.on_batch is not None:
            self._hooks.on_batch(
                result, BatchTiming(polled_at, stored_at, published_at, committed_at), records
            )
        if self._hooks.on_lag is not None:
            self._hooks.on_lag(self._lags(result.next_offsets))
        return result

    def _lags(self, next_offsets: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        # The high watermark comes with every fetch response: no request to the broker.
        lags = {}
        for (topic, partition), offset in next_offsets.items():
            end = self._consumer.highwater(TopicPartition(topic, partition))
            if end is not None:
                lags[(topic, partition)] = max(0, end - offset)
        return lags

    def report_assignment(self, partitions: Iterable[TopicPartition]) -> None:
        if self._hooks.on_assignment is not None:
            self._hooks.on_assignment(frozenset((p.topic, p.partition) for p in partitions))

    def _publish(self, result: BatchResult, commands: Sequence[TrainCommand]) -> None:
        topics = self._settings.topics
        pending = [
            self._producer.send(
                topics.recommendations,
                key=message.user_id.encode("utf-8"),
                value=encode_recommendation(message),
            )
            for message in result.recommendations
        ]
        # A dead letter the broker refuses for good must not fail the batch: it is settled
        # on its own, after the flush.
        letters = self._dead_letters.send(result.dead_letters)
        pending += [
            self._producer.send(topics.control, key=b"train", value=encode_control(command))
            for command in commands
        ]
        for command in commands:
            logger.warning("asking the trainer for an early run: %s", command.reason)
        self._producer.flush(timeout=PUBLISH_TIMEOUT_SECONDS)
        for future in pending:
            # Raises the broker's error for any message that was not acknowledged.
            future.get(timeout=PUBLISH_TIMEOUT_SECONDS)
        self._dead_letters.settle(letters)

    def _commit_kafka_offsets(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
            for (topic, partition), offset in next_offsets.items()
        }
        try:
            self._consumer.commit(offsets)
        except KafkaError as error:
            # Kafka's offsets only serve lag monitoring and a faster restart; the database
            # holds the truth, so a failed commit (e.g. during a rebalance) loses nothing.
            logger.warning("Kafka offset commit failed, the database offsets stand: %s", error)

    def _seek_pending(self) -> None:
        pending = set(self._partitions_to_seek)
        if not pending:
            return
        owned = sorted(pending & self._consumer.assignment())
        stored = self._applier.stored_offsets({partition.topic for partition in owned})
        stored = self._reset_if_outside_log(owned, stored)
        for partition in owned:
            offsets = stored.get((partition.topic, partition.partition))
            if offsets is None:
                self._consumer.seek_to_beginning(partition)
            else:
                self._consumer.seek(partition, offsets.resume)
        self._partitions_to_seek.difference_update(pending)
        logger.info("positioned %d partitions where they resume", len(pending))

    def _reset_if_outside_log(
        self,
        partitions: Sequence[TopicPartition],
        stored: dict[tuple[str, int], StoredOffsets],
    ) -> dict[tuple[str, int], StoredOffsets]:
        """``stored``, after resetting the partitions whose stored offsets lie outside their
        log to the operator's choice; without a choice, stop: resuming there would skip new
        records as if applied, or pass over records that are gone, without a word."""
        from streamrec.kafka import read_log_ranges

        with_offsets = [
            (partition.topic, partition.partition)
            for partition in partitions
            if (partition.topic, partition.partition) in stored
        ]
        logs = read_log_ranges(self._settings, self._consumer, with_offsets, stored)
        outside = find_outside_log(stored, logs)
        if not outside:
            return stored
        if self._offset_reset is None:
            error = StoredOffsetsOutsideLogError(outside)
            logger.error("%s", error)
            raise error
        resets = self._applier.reset_offsets(outside, self._offset_reset)
        for reset in resets:
            logger.warning("offset reset by the operator's choice: %s", reset.describe())
        # Kafka's committed offsets follow, so that lag monitoring sees the new positions.
        self._commit_kafka_offsets({(r.topic, r.partition): r.new_offset for r in resets})
        return self._applier.stored_offsets({partition.topic for partition in partitions})

    def _retry(self, operation: Callable[[], Any]) -> Any:
        return self._retrying(operation)

    def _report(self, stage: Stage, batch_number: int) -> None:
        if self._hooks.on_stage is not None:
            self._hooks.on_stage(stage, batch_number)


class _SeekToResumeOffsets(ConsumerRebalanceListener):
    """On every assignment, move the assigned partitions to where they resume."""

    def __init__(self, owner: InteractionConsumer) -> None:
        self._owner = owner

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Nothing to save: each batch is stored and committed before the next poll.
        logger.info("partitions revoked: %s", _describe(revoked))
        self._owner.report_assignment(())

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        logger.info("partitions assigned: %s", _describe(assigned))
        self._owner.report_assignment(assigned)
        self._owner.seek_when_polled(assigned)


def drift_train_command(signal: DriftSignal) -> TrainCommand:
    """The control-topic request for an early run that a drift signal makes."""
    return TrainCommand(uuid4().hex, TrainingTrigger.DRIFT, time.time(), signal.describe())


def run_consumer(
    settings: Settings,
    applier: BatchApplier,
    *,
    max_records: int | None = None,
    idle_exit_seconds: float | None = None,
    hooks: ConsumerHooks | None = None,
    offset_reset: OffsetResetChoice | None = None,
) -> RunSummary:
    """Build the Kafka clients from ``settings`` and run the loop in this process, stopping
    cleanly on SIGTERM or SIGINT. Must be called from the main thread (signal handlers).
    ``offset_reset``: where to resume partitions whose stored offsets lie outside the log."""
    from streamrec.kafka import create_consumer, create_producer

    producer = create_producer(settings)
    try:
        kafka_consumer = create_consumer(settings, group_id=settings.kafka.consumer_group)
        loop = InteractionConsumer(
            settings, applier, kafka_consumer, producer, hooks=hooks, offset_reset=offset_reset
        )

        def stop(signal_number: int, frame: FrameType | None) -> None:
            name = signal.Signals(signal_number).name
            logger.info("signal %s: finishing the current batch", name)
            loop.request_stop()

        previous = {name: signal.signal(name, stop) for name in (signal.SIGTERM, signal.SIGINT)}
        try:
            return loop.run(max_records=max_records, idle_exit_seconds=idle_exit_seconds)
        finally:
            for name, handler in previous.items():
                signal.signal(name, handler)
    finally:
        producer.close(timeout=PUBLISH_TIMEOUT_SECONDS)


def _source_record(record: Any) -> SourceRecord:
    timestamp = record.timestamp
    return SourceRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        broker_timestamp=None if timestamp is None or timestamp < 0 else timestamp / 1000.0,
    )


def _describe(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions))
