"""Prometheus metrics of a streamrec process, each object on its own CollectorRegistry.

Nothing is registered globally: two consumers in one test process, or a consumer and a
trainer, each get their own registry and so their own /metrics page. Names follow the
Prometheus conventions (``_total`` counters, ``_seconds`` durations) under ``streamrec_``.

>>> metrics = ConsumerMetrics()
>>> from consumers.interaction_consumer import BatchTiming
>>> from streamrec.services.batch import BatchResult
>>> result = BatchResult()
>>> result.counters.records, result.counters.interactions_applied = 3, 2
>>> result.counters.dead_letters_by_reason["invalid_json"] = 1
>>> metrics.observe_batch(result, BatchTiming(10.0, 10.2, 10.3, 10.4))
>>> metrics.sample("streamrec_events_processed_total", outcome="applied")
2.0
>>> metrics.sample("streamrec_dead_letters_total", reason="invalid_json")
1.0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from streamrec.services.batch import BatchResult, SourceRecord

NAMESPACE = "streamrec"
# Event-to-recommendation and batch durations: from a few milliseconds to a stalled minute.
LATENCY_BUCKETS_SECONDS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000)
# A fine-tune takes seconds to tens of minutes.
TRAINING_BUCKETS_SECONDS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_800.0, 3_600.0)


class StageTimes(Protocol):
    """Wall-clock times (seconds since the epoch) of one batch's stages, as the consumer
    loop reports them (``consumers.interaction_consumer.BatchTiming``)."""

    @property
    def polled_at(self) -> float: ...
    @property
    def stored_at(self) -> float: ...
    @property
    def published_at(self) -> float: ...
    @property
    def committed_at(self) -> float: ...


class ProcessMetrics:
    """What every streamrec process exposes: its active model version and process resources
    (CPU, memory, open files), on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        ProcessCollector(namespace=NAMESPACE, registry=self.registry)
        self.active_model_version = Gauge(
            "active_model_version",
            "The model version this process serves or trains from; -1 when none is active.",
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.active_model_version.set(-1)

    def set_active_model_version(self, version: int | None) -> None:
        self.active_model_version.set(-1 if version is None else version)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format, as /metrics serves it."""
        return generate_latest(self.registry)

    def sample(self, name: str, **labels: str) -> float | None:
        """The current value of one sample (for tests and progress displays)."""
        return self.registry.get_sample_value(name, labels)


class ConsumerMetrics(ProcessMetrics):
    """The pipeline consumer's metrics; feed it from the consumer loop's hooks."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        common = {"namespace": NAMESPACE, "registry": self.registry}
        self.events_processed = Counter(
            "events_processed",
            "Input records handled, by outcome: applied, ignored (a repeated or older event), "
            "already_applied (replayed after a restart), dead_letter, item.",
            ["outcome"],
            **common,
        )
        self.dead_letters = Counter(
            "dead_letters", "Rejected input records, by reason code.", ["reason"], **common
        )
        self.dead_letters_refused = Counter(
            "dead_letters_refused",
            "Dead letters the broker refused for good, by what was published instead: "
            "headers_only (the headers without key or payload), dropped (nothing; the "
            "dead_letters table row is the record).",
            ["fallback"],
            **common,
        )
        self.recommendations_published = Counter(
            "recommendations_published", "Recommendation messages published.", **common
        )
        self.batches = Counter("batches", "Batches applied and committed.", **common)
        self.batch_retries = Counter(
            "batch_retries",
            "Attempts of a batch that failed transiently and were retried, by error type.",
            ["error"],
            **common,
        )
        self.batch_size = Histogram(
            "batch_size_records", "Records per polled batch.", buckets=BATCH_SIZE_BUCKETS, **common
        )
        self.batch_latency = Histogram(
            "batch_latency_seconds",
            "Time of each stage of a batch: apply (the database transaction), publish, commit "
            "(Kafka offsets) and total (poll to commit).",
            ["stage"],
            buckets=LATENCY_BUCKETS_SECONDS,
            **common,
        )
        self.event_to_recommendation = Histogram(
            "event_to_recommendation_seconds",
            "From an input record's Kafka timestamp to the flush of the recommendations it caused.",
            buckets=LATENCY_BUCKETS_SECONDS,
            **common,
        )
        self.consumer_lag = Gauge(
            "consumer_lag_records",
            "Records in a partition not yet processed (end offset minus next offset).",
            ["topic", "partition"],
            **common,
        )
        self.last_batch_time = Gauge(
            "last_batch_timestamp_seconds", "When the last batch was committed.", **common
        )

    def observe_batch(
        self, result: BatchResult, timing: StageTimes, records: Sequence[SourceRecord] = ()
    ) -> None:
        """Count a committed batch. With its ``records``, also observe the latency of every
        input record that led to a published recommendation."""
        counters = result.counters
        outcomes = {
            "applied": counters.interactions_applied,
            "ignored": counters.interactions_ignored,
            "already_applied": counters.records_already_applied,
            "dead_letter": counters.dead_letters,
            "item": counters.items_upserted,
        }
        for outcome, count in outcomes.items():
            if count:
                self.events_processed.labels(outcome).inc(count)
        for reason, count in counters.dead_letters_by_reason.items():
            self.dead_letters.labels(reason).inc(count)
        self.recommendations_published.inc(len(result.recommendations))
        self.batches.inc()
        self.batch_size.observe(counters.records)
        stages = {
            "apply": timing.stored_at - timing.polled_at,
            "publish": timing.published_at - timing.stored_at,
            "commit": timing.committed_at - timing.published_at,
            "total": timing.committed_at - timing.polled_at,
        }
        for stage, seconds in stages.items():
            self.batch_latency.labels(stage).observe(max(0.0, seconds))
        for latency in event_to_recommendation_latencies(result, timing, records):
            self.event_to_recommendation.observe(latency)
        self.set_active_model_version(result.model_version)
        self.last_batch_time.set(timing.committed_at)

    def observe_retry(self, error: BaseException, delay_seconds: float) -> None:
        self.batch_retries.labels(type(error).__name__).inc()

    def observe_refused_dead_letter(self, fallback: str) -> None:
        """Count a dead letter the broker refused, by ``fallback``: headers_only or dropped.

        >>> metrics = ConsumerMetrics()
        >>> metrics.observe_refused_dead_letter("dropped")
        >>> metrics.sample("streamrec_dead_letters_refused_total", fallback="dropped")
        1.0
        """
        self.dead_letters_refused.labels(fallback).inc()

    def set_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """The current lag of each assigned (topic, partition)."""
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic, str(partition)).set(lag)

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the lag of partitions this consumer no longer owns (after a rebalance), so
        that the sum over consumers does not count them twice."""
        for topic, partition in partitions:
            try:
                self.consumer_lag.remove(topic, str(partition))
            except KeyError:
                continue


def event_to_recommendation_latencies(
    result: BatchResult, timing: StageTimes, records: Sequence[SourceRecord]
) -> list[float]:
    """Seconds from each record's Kafka timestamp to the batch's publication, for every
    record of a user who got a recommendation (dead letters and items excluded).

    >>> from consumers.interaction_consumer import BatchTiming
    >>> from streamrec.events import RecommendationMessage, SourceEvent
    >>> result = BatchResult(recommendations=[RecommendationMessage(
    ...     "u1", (), 1, (), 0.0, SourceEvent("interactions", 0, 5, 0.0))])
    >>> records = [SourceRecord("interactions", 0, 5, b"u1", b"{}", broker_timestamp=9.5),
    ...            SourceRecord("items", 0, 1, b"i1", b"{}", broker_timestamp=9.0)]
    >>> event_to_recommendation_latencies(result, BatchTiming(10, 10, 10.25, 10.3), records)
    [0.75]
    """
    if not result.recommendations:
        return []
    topics = {message.source.topic for message in result.recommendations if message.source}
    rejected = {
        (letter.source_topic, letter.source_partition, letter.source_offset)
        for letter in result.dead_letters
    }
    return [
        max(0.0, timing.published_at - record.broker_timestamp)
        for record in records
        if record.broker_timestamp is not None
        and record.topic in topics
        and (record.topic, record.partition, record.offset) not in rejected
    ]


class TrainerMetrics(ProcessMetrics):
    """The scheduled trainer's metrics: runs by outcome, their timing, fine-tune durations.

    >>> metrics = TrainerMetrics(clock=lambda: 1_000.0)
    >>> metrics.observe_run("promoted", fine_tune_seconds=42.0)
    >>> metrics.sample("streamrec_trainer_runs_total", outcome="promoted")
    1.0
    >>> metrics.sample("streamrec_trainer_last_run_timestamp_seconds")
    1000.0
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(registry)
        self._clock = clock
        common = {"namespace": NAMESPACE, "subsystem": "trainer", "registry": self.registry}
        self.runs = Counter(
            "runs",
            "Training runs by outcome (e.g. promoted, rejected, skipped, failed).",
            ["outcome"],
            **common,
        )
        self.last_run_time = Gauge(
            "last_run_timestamp_seconds", "When the last run finished, any outcome.", **common
        )
        self.last_success_time = Gauge(
            "last_promotion_timestamp_seconds", "When a run last promoted a version.", **common
        )
        self.fine_tune_duration = Histogram(
            "fine_tune_seconds",
            "Duration of the fine-tuning step of a run.",
            buckets=TRAINING_BUCKETS_SECONDS,
            **common,
        )
        self.rebuild_duration = Histogram(
            "rebuild_seconds",
            "Duration of rebuilding every user's state under a promoted version.",
            buckets=TRAINING_BUCKETS_SECONDS,
            **common,
        )
        self.rebuilt_users = Counter(
            "rebuilt_users", "Users whose state was rebuilt under a new version.", **common
        )

    def observe_run(
        self,
        outcome: str,
        *,
        fine_tune_seconds: float | None = None,
        rebuild_seconds: float | None = None,
        rebuilt_users: int = 0,
    ) -> None:
        """Record one finished run; ``outcome`` "promoted" also sets the promotion time."""
        now = self._clock()
        self.runs.labels(outcome).inc()
        self.last_run_time.set(now)
        if outcome == "promoted":
            self.last_success_time.set(now)
        if fine_tune_seconds is not None:
            self.fine_tune_duration.observe(fine_tune_seconds)
        if rebuild_seconds is not None:
            self.rebuild_duration.observe(rebuild_seconds)
        if rebuilt_users:
            self.rebuilt_users.inc(rebuilt_users)
