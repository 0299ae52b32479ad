"""Stored consumer offsets against the log they point into.

The database holds, per input partition, the next offset to read and the acknowledged one
(``streamrec.storage.repositories.offsets``); a consumer resumes at the lower of the two. The
broker's log holds the offsets from its start (the first record it still has) up to its end
(the offset the next record will get). A stored position outside that range means input was
lost or would be skipped:

- past the end: the topic was deleted and created again, or its log was truncated. The new
  records get offsets the consumer believes it applied already, and it would skip them
  without a word;
- below the start: retention deleted records that were never read.

Neither is fixed by a guess: the consumer stops, and the operator chooses where to resume
(``streamrec consume --reset-offsets earliest|latest``). This module is the pure part: the
comparison, the choice, and the values recorded for each reset.

>>> stored = {("interactions", 0): StoredOffsets(825, 825),
...           ("interactions", 1): StoredOffsets(7, 7)}
>>> logs = {("interactions", 0): LogRange(0, 1), ("interactions", 1): LogRange(0, 9)}
>>> [outside.describe() for outside in find_outside_log(stored, logs)]
['interactions[0]: stored offset 825, log 0..1']
>>> OffsetResetChoice.LATEST.new_offset(LogRange(0, 1))
1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from streamrec.errors import UserFacingError

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LogRange:
    """The offsets a partition's log holds: ``start`` is its first record's (the log start
    offset), ``end`` the one its next record will get (the high watermark). An empty log has
    ``start == end``."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


@dataclass(frozen=True, slots=True)
class StoredOffsets:
    """One partition's offsets in the database: records below ``next_offset`` were applied,
    records below ``acknowledged_offset`` had their outputs acknowledged."""

    next_offset: int
    acknowledged_offset: int

    @property
    def resume(self) -> int:
        """Where a consumer resumes: records between the two offsets are read again so that
        their outputs are published."""
        return min(self.next_offset, self.acknowledged_offset)


@dataclass(frozen=True, slots=True)
class OutOfRange:
    """A partition whose stored position lies outside its log. ``stored`` is the offending
    offset: the next offset when it is past the end, else the resume offset."""

    topic: str
    partition: int
    stored: int
    log: LogRange

    def describe(self) -> str:
        return f"{self.topic}[{self.partition}]: stored offset {self.stored}, log {self.log}"


def outside_log(stored: StoredOffsets, log: LogRange) -> int | None:
    """The stored offset that lies outside ``log``, or None when the log holds both.

    Past the end means the log lost records the consumer applied (a recreated or truncated
    topic); below the start, that records the consumer never read are gone (retention). A
    consumer that has read everything stands exactly at the end, which is inside.

    >>> outside_log(StoredOffsets(825, 825), LogRange(0, 1))
    825
    >>> outside_log(StoredOffsets(40, 40), LogRange(100, 300))
    40
    >>> outside_log(StoredOffsets(300, 300), LogRange(100, 300)) is None
    True
    >>> outside_log(StoredOffsets(120, 90), LogRange(100, 300))  # resumes at 90: deleted
    90
    """
    if stored.next_offset > log.end:
        return stored.next_offset
    if stored.resume < log.start:
        return stored.resume
    return None


def find_outside_log(
    stored: Mapping[TopicPartition, StoredOffsets], logs: Mapping[TopicPartition, LogRange]
) -> list[OutOfRange]:
    """Every partition with both a stored position and a known log, where the first lies
    outside the second, in partition order. Partitions without a stored offset start at the
    beginning of their log and are never outside it."""
    found = []
    for key in sorted(stored.keys() & logs.keys()):
        offset = outside_log(stored[key], logs[key])
        if offset is not None:
            topic, partition = key
            found.append(OutOfRange(topic, partition, offset, logs[key]))
    return found


class OffsetResetChoice(StrEnum):
    """Where the operator resumes a partition whose stored position lies outside its log.

    ``earliest`` reads everything the log holds: on a recreated topic these are new records,
    and each is applied or not by the interaction rule (an event already stored, same event
    id and timestamp, changes nothing). ``latest`` skips what the log holds and reads only
    what is produced from now on.
    """

    EARLIEST = "earliest"
    LATEST = "latest"

    def new_offset(self, log: LogRange) -> int:
        return log.start if self is OffsetResetChoice.EARLIEST else log.end


@dataclass(frozen=True, slots=True)
class OffsetReset:
    """One recorded reset: the partition, the stored offset that lay outside the log, the
    log's range at the time, the operator's choice and the offset stored instead."""

    consumer_group: str
    topic: str
    partition: int
    stored_offset: int
    log: LogRange
    choice: OffsetResetChoice
    new_offset: int
    reset_at: float

    def describe(self) -> str:
        return (
            f"{self.topic}[{self.partition}]: stored offset {self.stored_offset} outside the "
            f"log {self.log}, reset to {self.choice.value} ({self.new_offset})"
        )


class StoredOffsetsOutsideLogError(UserFacingError):
    """A consumer found stored positions outside the log and no choice of where to resume.

    >>> error = StoredOffsetsOutsideLogError([OutOfRange("interactions", 0, 825, LogRange(0, 1))])
    >>> str(error).splitlines()[0][:76]
    'stored offsets outside the log: interactions[0]: stored offset 825, log 0..1'
    """

    def __init__(self, outside: Iterable[OutOfRange]) -> None:
        self.outside = list(outside)
        partitions = "; ".join(found.describe() for found in self.outside)
        super().__init__(
            f"stored offsets outside the log: {partitions} (the topic was recreated or "
            "truncated, or retention deleted unread records); nothing was applied: "
            "resume with `streamrec consume --reset-offsets earliest|latest` "
            "(docs/operations.md, Runbook)"
        )
