"""The fallback a new user would have been shown before each batch, for prequential scoring.

The pipeline publishes a user's recommendations only once their first batch is applied, so
a user's first events (every event of theirs in that batch) have no message of their own to
be judged against. A product serves such a user the fallback, the global list of
``streamrec recommend`` (``services.recommending.fallback_recommendations``). A
``FallbackRecorder`` hooks into the consumer loop (``ConsumerHooks.on_batch``, which runs in
the consumer's thread after the batch is committed) and records, for each batch, the
fallback as it stood before that batch, with the offsets the batch held per partition.

With one consumer and no trainer, the state read right after batch n is committed is the
state batch n+1 starts from; the list for the first batch is read when the recorder is made,
so make it before the consumer starts. ``drain()`` is safe to call from another thread.

>>> from streamrec.services.batch import SourceRecord
>>> ranges = batch_offset_ranges(
...     [SourceRecord("in", 0, 5, b"u", b""), SourceRecord("in", 0, 6, b"u", b""),
...      SourceRecord("in", 1, 2, b"v", b""), SourceRecord("other", 1, 9, b"v", b"")], "in")
>>> sorted(ranges.items())
[(0, (5, 6)), (1, (2, 2))]
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.services.batch import SourceRecord
from streamrec.services.recommending import fallback_recommendations
from streamrec.storage import UnitOfWork

if TYPE_CHECKING:
    from consumers import ConsumerHooks


@dataclass(frozen=True, slots=True)
class FallbackList:
    """The fallback before one batch, for the offsets ``first_offset``..``last_offset`` of
    ``partition`` that the batch held."""

    partition: int
    first_offset: int
    last_offset: int
    item_ids: tuple[str, ...]


def batch_offset_ranges(records: Sequence[SourceRecord], topic: str) -> dict[int, tuple[int, int]]:
    """The first and last offset of ``topic``'s records in a batch, per partition."""
    ranges: dict[int, tuple[int, int]] = {}
    for record in records:
        if record.topic != topic:
            continue
        first, last = ranges.get(record.partition, (record.offset, record.offset))
        ranges[record.partition] = (min(first, record.offset), max(last, record.offset))
    return ranges


class FallbackRecorder:
    """Records the fallback before every batch of one consumer (see module text)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine
        self._recorded: queue.SimpleQueue[FallbackList] = queue.SimpleQueue()
        self._current = self._read()

    @property
    def current(self) -> tuple[str, ...]:
        """The fallback a batch starting now would be judged against."""
        return self._current

    def hooks(self) -> ConsumerHooks:
        from consumers import ConsumerHooks

        return ConsumerHooks(on_batch=self.on_batch)

    def on_batch(self, result: Any, timing: Any, records: Sequence[SourceRecord]) -> None:
        """After a committed batch: its records were served what was current before it."""
        ranges = batch_offset_ranges(records, self._settings.topics.interactions)
        for partition, (first, last) in sorted(ranges.items()):
            self._recorded.put(FallbackList(partition, first, last, self._current))
        self._current = self._read()

    def drain(self) -> list[FallbackList]:
        """Every list recorded since the last call."""
        drained = []
        while True:
            try:
                drained.append(self._recorded.get_nowait())
            except queue.Empty:
                return drained

    def _read(self) -> tuple[str, ...]:
        with UnitOfWork(self._engine) as uow:
            items = fallback_recommendations(uow, self._settings.serving)
        return tuple(item.item_id for item in items)
