"""What ``streamrec status`` reports: lag per partition, progress, dead letters, the model,
and stored offsets that lie outside the log, with the operator's last resets of them.

The broker's log ranges are passed in (the CLI asks Kafka for them), so this module only
combines them with what the database knows.

>>> lag = PartitionLag("interactions", 0, LogRange(0, 120), StoredOffsets(100, 100))
>>> lag.lag, lag.processed, lag.describe_lag()
(20, 100, '20')
>>> recreated = PartitionLag("interactions", 0, LogRange(0, 1), StoredOffsets(825, 825))
>>> recreated.lag is None, recreated.describe_lag()
(True, 'OUT OF RANGE: stored 825, log 0..1')
>>> retained = PartitionLag("interactions", 0, LogRange(500, 900), StoredOffsets(300, 300))
>>> retained.lag is None, retained.describe_lag()  # retention deleted records never read
(True, 'OUT OF RANGE: stored 300, log 500..900')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streamrec.offsets import LogRange, OffsetReset, StoredOffsets, outside_log
from streamrec.storage.unit_of_work import UnitOfWork

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One input partition: the range of its log (None: the broker did not answer) and the
    stored offsets (None: the consumers never stored any, so they start at the beginning)."""

    topic: str
    partition: int
    log: LogRange | None
    stored: StoredOffsets | None

    @property
    def stored_offset(self) -> int | None:
        """The next offset to read: records below it were applied."""
        return None if self.stored is None else self.stored.next_offset

    @property
    def outside_log(self) -> int | None:
        """The stored offset that lies outside the log (``streamrec.offsets``), if any."""
        if self.stored is None or self.log is None:
            return None
        return outside_log(self.stored, self.log)

    @property
    def lag(self) -> int | None:
        """Records the consumers have yet to read; None when unknown or meaningless (the
        stored offset lies outside the log)."""
        if self.log is None or self.outside_log is not None:
            return None
        start = self.stored.next_offset if self.stored is not None else self.log.start
        return max(0, self.log.end - start)

    @property
    def processed(self) -> int:
        if self.stored is None:
            return 0
        return max(0, self.stored.next_offset - (self.log.start if self.log else 0))

    def describe_lag(self) -> str:
        offending = self.outside_log
        if offending is not None:
            return f"OUT OF RANGE: stored {offending}, log {self.log}"
        return "-" if self.lag is None else str(self.lag)


@dataclass(slots=True)
class PipelineStatus:
    consumer_group: str
    partitions: list[PartitionLag] = field(default_factory=list)
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    active_model_version: int | None = None
    users_with_state: int = 0
    items: int = 0
    interactions: int = 0
    broker_error: str | None = None
    offset_resets: list[OffsetReset] = field(default_factory=list)

    @property
    def outside_log(self) -> list[PartitionLag]:
        """The partitions whose stored offsets lie outside the log: a consumer assigned one
        stops until the operator chooses where it resumes."""
        return [partition for partition in self.partitions if partition.outside_log is not None]

    @property
    def records_processed(self) -> int:
        return sum(partition.processed for partition in self.partitions)

    @property
    def total_lag(self) -> int | None:
        lags = [partition.lag for partition in self.partitions]
        if not lags or any(lag is None for lag in lags):
            return None
        return sum(lag for lag in lags if lag is not None)


def stored_offsets(
    uow: UnitOfWork, consumer_group: str, topics: Iterable[str]
) -> dict[TopicPartition, StoredOffsets]:
    """The stored offsets of every partition of ``topics`` with a row."""
    return {
        (topic, partition): offsets
        for topic in topics
        for partition, offsets in uow.offsets.stored(consumer_group, topic).items()
    }


def read_status(
    uow: UnitOfWork,
    consumer_group: str,
    topics: Iterable[str],
    log_ranges: Mapping[TopicPartition, LogRange],
    broker_error: str | None = None,
) -> PipelineStatus:
    """Combine the broker's log ranges of ``topics`` with the database's view."""
    status = PipelineStatus(consumer_group, broker_error=broker_error)
    for topic in topics:
        stored = uow.offsets.stored(consumer_group, topic)
        known = {partition for t, partition in log_ranges if t == topic} | set(stored)
        for partition in sorted(known):
            status.partitions.append(
                PartitionLag(
                    topic, partition, log_ranges.get((topic, partition)), stored.get(partition)
                )
            )
    status.offset_resets = uow.offsets.recent_resets(consumer_group)
    status.dead_letters_by_reason = dict(sorted(uow.dead_letters.counts_by_reason().items()))
    status.active_model_version = uow.models.active_version()
    if status.active_model_version is not None:
        status.users_with_state = uow.users.count(status.active_model_version)
    status.items = uow.items.count()
    status.interactions = uow.interactions.count()
    return status
