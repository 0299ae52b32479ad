"""Resetting stored offsets that lie outside the log, by the operator's choice.

The consumer finds the partitions (``streamrec.offsets.find_outside_log``, with the log
ranges it read from the broker); this module moves their stored and acknowledged offsets in
one transaction and records each move in the ``offset_resets`` table, so that ``streamrec
status`` and a later reader can tell what was skipped or read again, and why.

What ``earliest`` means for the state: the records the log holds are read from its start and
go through the same rules as any input. On a recreated topic they are new records; an event
whose ``(timestamp, event_id)`` is already stored changes nothing, an older one is ignored,
a newer one is applied. Nothing is applied twice, and nothing the state already holds is
taken back.

>>> from streamrec.offsets import LogRange, OutOfRange
>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> engine = create_memory_database()
>>> with UnitOfWork(engine) as uow:
...     uow.offsets.save("consumers", "interactions", {0: 825, 1: 40})
...     uow.commit()
>>> outside = [OutOfRange("interactions", 0, 825, LogRange(0, 600))]
>>> with UnitOfWork(engine) as uow:
...     resets = reset_offsets(uow, "consumers", outside, OffsetResetChoice.LATEST, now=9.0)
...     uow.commit()
>>> [(reset.partition, reset.new_offset) for reset in resets]
[(0, 600)]
>>> with UnitOfWork(engine) as uow:
...     uow.offsets.get("consumers", "interactions")
{0: 600, 1: 40}
"""

from __future__ import annotations

from collections.abc import Iterable

from streamrec.offsets import OffsetReset, OffsetResetChoice, OutOfRange
from streamrec.storage.unit_of_work import UnitOfWork


def reset_offsets(
    uow: UnitOfWork,
    consumer_group: str,
    outside: Iterable[OutOfRange],
    choice: OffsetResetChoice,
    *,
    now: float,
) -> list[OffsetReset]:
    """Move each partition of ``outside`` to its log's start (``earliest``) or end
    (``latest``), next and acknowledged offsets alike, and record it. Commit is the
    caller's."""
    resets = [
        OffsetReset(
            consumer_group=consumer_group,
            topic=found.topic,
            partition=found.partition,
            stored_offset=found.stored,
            log=found.log,
            choice=choice,
            new_offset=choice.new_offset(found.log),
            reset_at=now,
        )
        for found in outside
    ]
    for reset in resets:
        uow.offsets.reset(reset)
    return resets
