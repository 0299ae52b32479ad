"""What ``streamrec status`` reports: lag per partition, progress, dead letters, the model.

The broker's offsets are passed in (the CLI asks Kafka for them), so this module only combines
them with what the database knows.

>>> lag = PartitionLag("interactions", 0, beginning=0, end=120, stored=100)
>>> lag.lag, lag.processed
(20, 100)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streamrec.storage.unit_of_work import UnitOfWork

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One input partition: the broker's first and end offsets and the stored next offset
    (None: the consumers never stored one, so they start at the beginning)."""

    topic: str
    partition: int
    beginning: int | None
    end: int | None
    stored: int | None

    @property
    def lag(self) -> int | None:
        if self.end is None:
            return None
        start = self.stored if self.stored is not None else (self.beginning or 0)
        return max(0, self.end - start)

    @property
    def processed(self) -> int:
        if self.stored is None:
            return 0
        return max(0, self.stored - (self.beginning or 0))


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

    @property
    def records_processed(self) -> int:
        return sum(partition.processed for partition in self.partitions)

    @property
    def total_lag(self) -> int | None:
        lags = [partition.lag for partition in self.partitions]
        if not lags or any(lag is None for lag in lags):
            return None
        return sum(lag for lag in lags if lag is not None)


def read_status(
    uow: UnitOfWork,
    consumer_group: str,
    topics: Iterable[str],
    beginning_offsets: Mapping[TopicPartition, int],
    end_offsets: Mapping[TopicPartition, int],
    broker_error: str | None = None,
) -> PipelineStatus:
    """Combine the broker's offsets of ``topics`` with the database's view."""
    status = PipelineStatus(consumer_group, broker_error=broker_error)
    for topic in topics:
        stored = uow.offsets.get(consumer_group, topic)
        known = {partition for t, partition in end_offsets if t == topic} | set(stored)
        for partition in sorted(known):
            status.partitions.append(
                PartitionLag(
                    topic,
                    partition,
                    beginning_offsets.get((topic, partition)),
                    end_offsets.get((topic, partition)),
                    stored.get(partition),
                )
            )
    status.dead_letters_by_reason = dict(sorted(uow.dead_letters.counts_by_reason().items()))
    status.active_model_version = uow.models.active_version()
    if status.active_model_version is not None:
        status.users_with_state = uow.users.count(status.active_model_version)
    status.items = uow.items.count()
    status.interactions = uow.interactions.count()
    return status
