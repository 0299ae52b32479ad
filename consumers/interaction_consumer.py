"""The interaction consumer: the transactional batch loop over the interactions and items topics.

``InteractionConsumer`` is ``consumers.batch_loop.TransactionalBatchLoop`` subscribed to the
interactions and items topics, with the ingest service (``streamrec.services.ingest``) as its
handler. Per batch the service validates the records and stores their effects and offsets in
one database transaction, and returns as outbound messages what the loop then publishes: one
recommendation message per touched user, every dead letter of the batch, and a ``train``
command with trigger ``drift`` when the prequential hit rate fell. The loop's module says
what is guaranteed (state exactly once, outputs at least once, idempotent by key). This one
adds up the service's counters of each batch into the run's summary; ``run_consumer`` builds
the Kafka clients from the settings and runs it in this process until SIGTERM or SIGINT.

>>> summary = RunSummary(batches=2, stopped_because="idle")
>>> summary.counters.records = 7
>>> print(summary.describe())  # doctest: +NORMALIZE_WHITESPACE
consumed 7 records in 2 batches (idle): 0 interactions applied, 0 ignored, 0 items,
0 dead letters, 0 already applied earlier
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from kafka import KafkaConsumer, KafkaProducer

from consumers.batch_loop import (
    BatchHandler,
    BatchTiming,
    ConsumerHooks,
    Stage,
    TransactionalBatchLoop,
    stopping_on_signals,
)
from streamrec.config import Settings
from streamrec.offsets import OffsetResetChoice
from streamrec.services.batch import BatchCounters, BatchResult, SourceRecord

OnBatch = Callable[[BatchResult, BatchTiming, Sequence[SourceRecord]], None]


@dataclass(slots=True)
class RunSummary:
    """What one run of the consumer did, and why it ended."""

    batches: int = 0
    counters: BatchCounters = field(default_factory=BatchCounters)
    stopped_because: str = ""

    def describe(self) -> str:
        """One line for the operator: records, batches, why it stopped, and where the
        records went."""
        counters = self.counters
        return (
            f"consumed {counters.records} records in {self.batches} batches "
            f"({self.stopped_because}): {counters.interactions_applied} interactions applied, "
            f"{counters.interactions_ignored} ignored, {counters.items_upserted} items, "
            f"{counters.dead_letters} dead letters, "
            f"{counters.records_already_applied} already applied earlier"
        )


class InteractionConsumer:
    """The batch loop over the interactions and items topics, with an already-built Kafka
    consumer and producer (see ``run_consumer``) and ``applier`` as its handler (the ingest
    service). ``consumer`` must not be subscribed yet. An assigned partition whose stored
    offset lies outside its log stops the run with ``StoredOffsetsOutsideLogError``, unless
    ``offset_reset`` says where to resume it (the operator's ``--reset-offsets``).
    """

    def __init__(
        self,
        settings: Settings,
        applier: BatchHandler[BatchResult],
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        *,
        hooks: ConsumerHooks[BatchResult] | None = None,
        clock: Callable[[], float] = time.time,
        offset_reset: OffsetResetChoice | None = None,
    ) -> None:
        self._counters = BatchCounters()
        given: ConsumerHooks[BatchResult] = hooks or ConsumerHooks()
        self._loop = TransactionalBatchLoop(
            settings,
            [settings.topics.interactions, settings.topics.items],
            applier,
            consumer,
            producer,
            hooks=replace(given, on_batch=self._counting(given.on_batch)),
            clock=clock,
            offset_reset=offset_reset,
        )

    def request_stop(self) -> None:
        """Finish the batch in hand, commit, and leave (safe from a signal handler)."""
        self._loop.request_stop()

    def run(
        self, *, max_records: int | None = None, idle_exit_seconds: float | None = None
    ) -> RunSummary:
        """Consume until stopped, until ``max_records`` records are processed, or until no
        record arrived for ``idle_exit_seconds`` (counted from the first assignment)."""
        self._counters = BatchCounters()
        ran = self._loop.run(max_records=max_records, idle_exit_seconds=idle_exit_seconds)
        return RunSummary(ran.batches, self._counters, ran.stopped_because)

    def _counting(self, on_batch: OnBatch | None) -> OnBatch:
        def count_then_report(
            result: BatchResult, timing: BatchTiming, records: Sequence[SourceRecord]
        ) -> None:
            self._counters.add(result.counters)
            if on_batch is not None:
                on_batch(result, timing, records)

        return count_then_report


def run_consumer(
    settings: Settings,
    applier: BatchHandler[BatchResult],
    *,
    max_records: int | None = None,
    idle_exit_seconds: float | None = None,
    hooks: ConsumerHooks[BatchResult] | None = None,
    offset_reset: OffsetResetChoice | None = None,
) -> RunSummary:
    """Build the Kafka clients from ``settings`` and run the consumer in this process,
    stopping cleanly on SIGTERM or SIGINT. Must be called from the main thread (signal
    handlers). ``offset_reset``: where to resume partitions whose stored offsets lie outside
    the log."""
    from streamrec.kafka import create_consumer, create_producer

    producer = create_producer(settings)
    try:
        kafka_consumer = create_consumer(settings, group_id=settings.kafka.consumer_group)
        consumer = InteractionConsumer(
            settings, applier, kafka_consumer, producer, hooks=hooks, offset_reset=offset_reset
        )
        with stopping_on_signals(consumer.request_stop):
            return consumer.run(max_records=max_records, idle_exit_seconds=idle_exit_seconds)
    finally:
        producer.close(timeout=settings.timeouts.publish_seconds)


__all__ = [
    "BatchTiming",
    "ConsumerHooks",
    "InteractionConsumer",
    "RunSummary",
    "Stage",
    "run_consumer",
]
