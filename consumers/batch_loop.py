"""A transactional Kafka batch loop: poll, apply in one transaction, publish, acknowledge, commit.

``TransactionalBatchLoop`` knows nothing of what the records mean. Per batch it hands the
records to a ``BatchHandler``, whose ``apply`` stores their effects and their partitions'
next offsets in one database transaction and returns what is to be sent as data: outbound
messages (``streamrec.services.outbound``) and the next offsets. The loop then sends those
messages in order, flushes, waits for the broker's acknowledgements (a message with a
fallback is settled on its own: ``consumers.outbound_publishing``), has the handler record
that the outputs were acknowledged, and commits the Kafka offsets.

The database holds two offsets per partition: the stored one (records below it were applied;
the handler skips them) and the acknowledged one (records below it had their outputs
published). On start and on every partition assignment the loop resumes at the lower of the
two, so a batch that was stored but whose outputs a crash dropped is read again, as already
applied, and its outputs are sent again. A crash at any point therefore loses nothing and
applies nothing twice (state exactly once; outputs at least once). A stored offset outside
the broker's log stops the loop, unless the operator chose where to resume
(``--reset-offsets``). Kafka's own committed offsets serve lag monitoring only.

Transient broker and database failures retry the failing step with exponential backoff; the
loop never moves past a batch it could not apply. ``request_stop`` (SIGTERM and SIGINT under
``stopping_on_signals``) finishes the current batch, commits, and leaves the group.

>>> Stage.STORED.value
'stored'
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import FrameType
from typing import Any, Generic, Protocol, TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.outbound_publishing import OnRefusedMessage, OutboundPublisher
from streamrec.config import Settings
from streamrec.offsets import (
    OffsetReset,
    OffsetResetChoice,
    OutOfRange,
    StoredOffsets,
    StoredOffsetsOutsideLogError,
    find_outside_log,
)
from streamrec.retrying import Backoff, StopRequested, is_transient_error, retrying
from streamrec.services.batch import SourceRecord
from streamrec.services.outbound import OutboundMessage

logger = logging.getLogger(__name__)


class AppliedBatch(Protocol):
    """What applying a batch returns, as far as the loop is concerned."""

    @property
    def outbound(self) -> Sequence[OutboundMessage]:
        """The messages to send once the batch is stored, in order."""
        ...

    @property
    def next_offsets(self) -> Mapping[tuple[str, int], int]:
        """The next offset of each partition of the batch."""
        ...


ResultT = TypeVar("ResultT", bound=AppliedBatch)


class BatchHandler(Protocol[ResultT]):
    """What the loop needs from the service layer (e.g. streamrec.services.ingest.IngestService)."""

    def apply(self, records: Sequence[SourceRecord]) -> ResultT:
        """Store the records' effects and the next offsets in one transaction, skipping
        records below the stored offsets; return what is to be sent."""
        ...

    def stored_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], StoredOffsets]: ...

    def reset_offsets(
        self, outside: Sequence[OutOfRange], choice: OffsetResetChoice
    ) -> list[OffsetReset]: ...

    def acknowledge(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        """Record that the outputs of the records below ``next_offsets`` were acknowledged."""
        ...


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
class ConsumerHooks(Generic[ResultT]):
    """Callbacks for observers (metrics, progress, tests); each is optional.

    ``on_stage(stage, batch_number)`` runs at every stage of every batch; ``on_batch`` after a
    batch is committed, with the handler's result and the batch's records; ``on_retry``
    before each backoff sleep; ``on_idle`` after an empty poll; ``on_assignment`` with the
    partitions owned after every rebalance (empty while one is in progress); ``on_lag`` after
    each batch, with the records still behind the broker's end of each partition of the
    batch; ``on_dead_letter_refused`` when the broker refused a message with a fallback (a
    dead letter) for good, with what reached the topic instead
    (``consumers.outbound_publishing``).
    """

    on_stage: Callable[[Stage, int], None] | None = None
    on_batch: Callable[[ResultT, BatchTiming, Sequence[SourceRecord]], None] | None = None
    on_retry: Callable[[BaseException, float], None] | None = None
    on_idle: Callable[[], None] | None = None
    on_assignment: Callable[[frozenset[tuple[str, int]]], None] | None = None
    on_lag: Callable[[dict[tuple[str, int], int]], None] | None = None
    on_dead_letter_refused: OnRefusedMessage | None = None


@dataclass(slots=True)
class LoopSummary:
    """What one run of the loop did, and why it ended."""

    batches: int = 0
    records: int = 0
    stopped_because: str = ""


class TransactionalBatchLoop(Generic[ResultT]):
    """The loop over ``topics`` with an already-built Kafka consumer and producer.

    ``consumer`` must not be subscribed yet: ``run`` subscribes it with the listener that
    seeks each assigned partition to where it resumes. An assigned partition whose stored
    offset lies outside its log stops the loop with ``StoredOffsetsOutsideLogError``, unless
    ``offset_reset`` says where to resume it (the operator's ``--reset-offsets``).
    ``settings`` gives the batch size and the timeouts (poll, publish, retry delays).
    """

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        handler: BatchHandler[ResultT],
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        *,
        hooks: ConsumerHooks[ResultT] | None = None,
        clock: Callable[[], float] = time.time,
        offset_reset: OffsetResetChoice | None = None,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._handler = handler
        self._consumer = consumer
        self._hooks: ConsumerHooks[ResultT] = hooks or ConsumerHooks()
        self._publisher = OutboundPublisher(
            producer,
            timeout_seconds=settings.timeouts.publish_seconds,
            on_refused=self._hooks.on_dead_letter_refused,
        )
        self._clock = clock
        self._stop = threading.Event()
        self._retrying = retrying(
            is_transient_error,
            Backoff.of_batches(settings.timeouts),
            sleep=self._stop.wait,
            stop_requested=self._stop.is_set,
            on_retry=self._hooks.on_retry,
        )
        self._partitions_to_seek: set[TopicPartition] = set()
        self._offset_reset = offset_reset

    def request_stop(self) -> None:
        """Finish the batch in hand, commit, and leave (safe from a signal handler)."""
        self._stop.set()

    def run(
        self, *, max_records: int | None = None, idle_exit_seconds: float | None = None
    ) -> LoopSummary:
        """Consume until stopped, until ``max_records`` records are processed, or until no
        record arrived for ``idle_exit_seconds`` (counted from the first assignment)."""
        summary = LoopSummary()
        self._consumer.subscribe(self._topics, listener=_SeekToResumeOffsets(self))
        idle_since: float | None = None
        try:
            while not self._stop.is_set():
                remaining = None if max_records is None else max_records - summary.records
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
                self._process(records, summary.batches)
                summary.records += len(records)
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
            summary.records,
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

    def report_assignment(self, partitions: Iterable[TopicPartition]) -> None:
        if self._hooks.on_assignment is not None:
            self._hooks.on_assignment(frozenset((p.topic, p.partition) for p in partitions))

    # The loop's steps --------------------------------------------------------------------

    def _poll(self, remaining: int | None) -> list[SourceRecord]:
        limit = self._settings.kafka.max_poll_records
        if remaining is not None:
            limit = min(limit, remaining)
        polled = self._retry(
            lambda: self._consumer.poll(
                timeout_ms=self._settings.timeouts.kafka_poll_ms, max_records=limit
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

    def _process(self, records: list[SourceRecord], batch_number: int) -> ResultT:
        polled_at = self._clock()
        self._report(Stage.POLLED, batch_number)
        result: ResultT = self._retry(lambda: self._handler.apply(records))
        stored_at = self._clock()
        self._report(Stage.STORED, batch_number)
        # The outbound messages were made once, by the handler: a retried publication sends
        # the same messages again (the same request ids, the same lists).
        self._retry(lambda: self._publisher.publish(result.outbound))
        self._retry(lambda: self._handler.acknowledge(result.next_offsets))
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
        stored = self._handler.stored_offsets({partition.topic for partition in owned})
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
        resets = self._handler.reset_offsets(outside, self._offset_reset)
        for reset in resets:
            logger.warning("offset reset by the operator's choice: %s", reset.describe())
        # Kafka's committed offsets follow, so that lag monitoring sees the new positions.
        self._commit_kafka_offsets({(r.topic, r.partition): r.new_offset for r in resets})
        return self._handler.stored_offsets({partition.topic for partition in partitions})

    def _retry(self, operation: Callable[[], Any]) -> Any:
        return self._retrying(operation)

    def _report(self, stage: Stage, batch_number: int) -> None:
        if self._hooks.on_stage is not None:
            self._hooks.on_stage(stage, batch_number)


class _SeekToResumeOffsets(ConsumerRebalanceListener):
    """On every assignment, move the assigned partitions to where they resume."""

    def __init__(self, owner: TransactionalBatchLoop[Any]) -> None:
        self._owner = owner

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Nothing to save: each batch is stored and committed before the next poll.
        logger.info("partitions revoked: %s", _describe(revoked))
        self._owner.report_assignment(())

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        logger.info("partitions assigned: %s", _describe(assigned))
        self._owner.report_assignment(assigned)
        self._owner.seek_when_polled(assigned)


@contextlib.contextmanager
def stopping_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT call ``request_stop`` (a loop's: finish the
    batch in hand and stop); the previous handlers come back after it. Only from the main
    thread (signal handlers)."""

    def stop(signal_number: int, frame: FrameType | None) -> None:
        name = signal.Signals(signal_number).name
        logger.info("signal %s: finishing the current batch", name)
        request_stop()

    previous = {name: signal.signal(name, stop) for name in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


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
