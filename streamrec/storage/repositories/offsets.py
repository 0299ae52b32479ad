"""Consumer offsets: the next offset to read, stored in the same transaction as the effects
of the batch it ends, and the acknowledged offset, stored once the batch's outputs were
acknowledged by the broker.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     uow.offsets.save("consumers", "interactions", {0: 120, 3: 7})
...     uow.offsets.acknowledge("consumers", "interactions", {0: 80})
...     uow.offsets.get("consumers", "interactions"), uow.offsets.resume_offsets(
...         "consumers", "interactions")
({0: 120, 3: 7}, {0: 80, 3: 0})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import insert, select, update

from streamrec.offsets import LogRange, OffsetReset, OffsetResetChoice, StoredOffsets
from streamrec.storage.errors import InvalidRecordError
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import upsert
from streamrec.storage.tables import ConsumerOffsetRow, OffsetResetRow, table_of

_OFFSETS = table_of(ConsumerOffsetRow)
_RESETS = table_of(OffsetResetRow)


class OffsetRepository(Repository):
    def get(self, consumer_group: str, topic: str) -> dict[int, int]:
        """partition -> the next offset to read, for the partitions with a stored offset."""
        statement = select(_OFFSETS.c.partition, _OFFSETS.c.next_offset).where(
            _OFFSETS.c.consumer_group == consumer_group, _OFFSETS.c.topic == topic
        )
        return {partition: offset for partition, offset in self._connection.execute(statement)}

    def resume_offsets(self, consumer_group: str, topic: str) -> dict[int, int]:
        """partition -> where a consumer resumes: the lower of the next and the acknowledged
        offset, so that records whose outputs were never acknowledged are read again."""
        statement = select(
            _OFFSETS.c.partition, _OFFSETS.c.next_offset, _OFFSETS.c.acknowledged_offset
        ).where(_OFFSETS.c.consumer_group == consumer_group, _OFFSETS.c.topic == topic)
        return {
            partition: min(next_offset, acknowledged)
            for partition, next_offset, acknowledged in self._connection.execute(statement)
        }

    def stored(self, consumer_group: str, topic: str) -> dict[int, StoredOffsets]:
        """partition -> its next and acknowledged offsets, for the partitions with a row."""
        statement = select(
            _OFFSETS.c.partition, _OFFSETS.c.next_offset, _OFFSETS.c.acknowledged_offset
        ).where(_OFFSETS.c.consumer_group == consumer_group, _OFFSETS.c.topic == topic)
        return {
            partition: StoredOffsets(next_offset, acknowledged)
            for partition, next_offset, acknowledged in self._connection.execute(statement)
        }

    def reset(self, reset: OffsetReset) -> None:
        """Move a partition's next and acknowledged offsets to ``reset.new_offset``, in either
        direction, and record the reset beside them (``recent_resets``).

        >>> from streamrec.storage import UnitOfWork, create_memory_database
        >>> with UnitOfWork(create_memory_database()) as uow:
        ...     uow.offsets.save("consumers", "interactions", {0: 825})
        ...     uow.offsets.acknowledge("consumers", "interactions", {0: 825})
        ...     uow.offsets.reset(OffsetReset("consumers", "interactions", 0, 825,
        ...         LogRange(0, 1), OffsetResetChoice.EARLIEST, 0, reset_at=5.0))
        ...     uow.offsets.stored("consumers", "interactions")
        ...     [reset.describe() for reset in uow.offsets.recent_resets("consumers")]
        {0: StoredOffsets(next_offset=0, acknowledged_offset=0)}
        ['interactions[0]: stored offset 825 outside the log 0..1, reset to earliest (0)']
        """
        if reset.partition < 0 or reset.new_offset < 0:
            raise InvalidRecordError(
                f"{reset.topic} partition {reset.partition}: partition and offset must not be "
                f"negative, got offset {reset.new_offset}"
            )
        upsert(
            self._connection,
            _OFFSETS,
            [
                {
                    "consumer_group": reset.consumer_group,
                    "topic": reset.topic,
                    "partition": reset.partition,
                    "next_offset": reset.new_offset,
                    "acknowledged_offset": reset.new_offset,
                    "updated_at": reset.reset_at,
                }
            ],
            key=("consumer_group", "topic", "partition"),
            replace=("next_offset", "acknowledged_offset", "updated_at"),
        )
        self._connection.execute(
            insert(_RESETS).values(
                consumer_group=reset.consumer_group,
                topic=reset.topic,
                partition=reset.partition,
                stored_offset=reset.stored_offset,
                log_start_offset=reset.log.start,
                log_end_offset=reset.log.end,
                choice=reset.choice.value,
                new_offset=reset.new_offset,
                reset_at=reset.reset_at,
            )
        )

    def recent_resets(self, consumer_group: str, limit: int = 5) -> list[OffsetReset]:
        """The group's latest ``limit`` resets, newest first."""
        statement = (
            select(_RESETS)
            .where(_RESETS.c.consumer_group == consumer_group)
            .order_by(_RESETS.c.reset_at.desc(), _RESETS.c.id.desc())
            .limit(limit)
        )
        return [
            OffsetReset(
                consumer_group=row.consumer_group,
                topic=row.topic,
                partition=row.partition,
                stored_offset=row.stored_offset,
                log=LogRange(row.log_start_offset, row.log_end_offset),
                choice=OffsetResetChoice(row.choice),
                new_offset=row.new_offset,
                reset_at=row.reset_at,
            )
            for row in self._connection.execute(statement)
        ]

    def claim(self, consumer_group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """Lock the offsets of ``partitions`` until the transaction ends, and return them.

        A consumer that lost its partitions without noticing (a "zombie", stalled past the
        poll interval) may apply a batch at the same time as the partitions' new owner. Both
        claim the partitions first, so one waits for the other, then sees the offsets the
        other stored and skips what was already applied. Missing rows are inserted at offset 0
        (= read from the beginning) so that there is always a row to lock; partitions are
        locked in sorted order, so two claimants never deadlock.
        """
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        now = self._clock()
        upsert(
            self._connection,
            _OFFSETS,
            [
                {
                    "consumer_group": consumer_group,
                    "topic": topic,
                    "partition": partition,
                    "next_offset": 0,
                    "acknowledged_offset": 0,
                    "updated_at": now,
                }
                for partition in wanted
            ],
            key=("consumer_group", "topic", "partition"),
        )
        statement = (
            select(_OFFSETS.c.partition, _OFFSETS.c.next_offset)
            .where(
                _OFFSETS.c.consumer_group == consumer_group,
                _OFFSETS.c.topic == topic,
                _OFFSETS.c.partition.in_(wanted),
            )
            .order_by(_OFFSETS.c.partition)
            .with_for_update()
        )
        return {partition: offset for partition, offset in self._connection.execute(statement)}

    def save(self, consumer_group: str, topic: str, next_offsets: Mapping[int, int]) -> None:
        """Set the next offset of each given partition; other partitions keep theirs."""
        now = self._clock()
        rows = []
        for partition, offset in next_offsets.items():
            if partition < 0 or offset < 0:
                raise InvalidRecordError(
                    f"{topic} partition {partition}: partition and offset must not be negative,"
                    f" got offset {offset}"
                )
            rows.append(
                {
                    "consumer_group": consumer_group,
                    "topic": topic,
                    "partition": partition,
                    "next_offset": offset,
                    "acknowledged_offset": 0,  # kept by an existing row: not replaced
                    "updated_at": now,
                }
            )
        upsert(
            self._connection,
            _OFFSETS,
            rows,
            key=("consumer_group", "topic", "partition"),
            replace=("next_offset", "updated_at"),
        )

    def acknowledge(self, consumer_group: str, topic: str, next_offsets: Mapping[int, int]) -> None:
        """Record that the outputs of the records below each offset were acknowledged.

        Only ever moves forward: a late acknowledgement from a consumer that lost the
        partition cannot move its new owner back.
        """
        now = self._clock()
        for partition, offset in sorted(next_offsets.items()):
            self._connection.execute(
                update(_OFFSETS)
                .where(
                    _OFFSETS.c.consumer_group == consumer_group,
                    _OFFSETS.c.topic == topic,
                    _OFFSETS.c.partition == partition,
                    _OFFSETS.c.acknowledged_offset < offset,
                )
                .values(acknowledged_offset=offset, updated_at=now)
            )
