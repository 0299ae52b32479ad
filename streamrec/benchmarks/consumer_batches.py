"""The batches a consumer applied, recorded so that other methods can be replayed in them.

The pipeline refreshes a user's list once per consumer batch: every event of a batch is
judged against the lists published before it. To compare a baseline with the pipeline in
one regime, the baseline must be refreshed at the same boundaries. A ``ConsumerBatchLog``
hooks into the consumer loop (``ConsumerHooks.on_batch``, in the consumer's thread, after a
batch is committed) and records, for each batch, the stream positions of the interaction
events it held (found by event id), the latest event time among them, and how long the
consumer spent on it (from poll to commit).

>>> from streamrec.services.batch import SourceRecord
>>> log = ConsumerBatchLog("in", {"e1": 0, "e2": 1, "e3": 2})
>>> def record(offset: int, event_id: str, timestamp: float) -> SourceRecord:
...     value = f'{{"event_id": "{event_id}", "timestamp": {timestamp}}}'.encode()
...     return SourceRecord("in", 0, offset, b"u", value)
>>> log.add_records([record(0, "e1", 10.0), record(1, "e2", 30.0)], seconds=0.5)
>>> log.add_records([record(2, "e3", 20.0), SourceRecord("items", 0, 9, b"i", b"{}")])
>>> [batch.positions for batch in log.batches()], log.batches()[0].latest_event_time
([(0, 1), (2,)], 30.0)
>>> log.applied_events, log.latest_event_time
(3, 30.0)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamrec.services.batch import SourceRecord

if TYPE_CHECKING:
    from consumers import ConsumerHooks

OnBatch = Callable[[Any, Any, Sequence[SourceRecord]], None]


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    """One committed consumer batch: the stream positions of its interaction events, in the
    order the consumer read them, the latest event time among them and the seconds from
    its poll to its commit (None when not known)."""

    positions: tuple[int, ...]
    latest_event_time: float | None
    seconds: float | None = None


class ConsumerBatchLog:
    """Records every batch of one consumer (see module text); ``positions`` maps the event
    ids of the replay to their place in the stream (other records are not recorded)."""

    def __init__(self, interactions_topic: str, positions: Mapping[str, int]) -> None:
        self._topic = interactions_topic
        self._positions = positions
        self._batches: list[AppliedBatch] = []
        self._lock = threading.Lock()
        self.applied_events = 0
        self.latest_event_time: float | None = None

    def on_batch(self, result: Any, timing: Any, records: Sequence[SourceRecord]) -> None:
        """The consumer loop's hook: record the committed batch."""
        seconds = None if timing is None else timing.committed_at - timing.polled_at
        self.add_records(records, seconds)

    def add_records(self, records: Sequence[SourceRecord], seconds: float | None = None) -> None:
        positions, latest = [], None
        for record in records:
            if record.topic != self._topic or record.value is None:
                continue
            event_id, timestamp = _id_and_time(record.value)
            position = None if event_id is None else self._positions.get(event_id)
            if position is None:
                continue
            positions.append(position)
            if timestamp is not None:
                latest = timestamp if latest is None else max(latest, timestamp)
        if not positions:
            return
        with self._lock:
            self._batches.append(AppliedBatch(tuple(positions), latest, seconds))
            self.applied_events += len(positions)
            if latest is not None:
                self.latest_event_time = max(self.latest_event_time or latest, latest)

    def batches(self) -> list[AppliedBatch]:
        """Every batch recorded so far, in the order the consumer committed them."""
        with self._lock:
            return list(self._batches)


def _id_and_time(value: bytes) -> tuple[str | None, float | None]:
    """The event id and time of an interaction record; (None, None) when it has none (the
    consumer dead-letters such a record: it is not part of the replay)."""
    try:
        document = json.loads(value)
    except ValueError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    event_id, timestamp = document.get("event_id"), document.get("timestamp")
    return (
        event_id if isinstance(event_id, str) else None,
        float(timestamp) if isinstance(timestamp, int | float) else None,
    )


def chained_hooks(*on_batch: OnBatch) -> ConsumerHooks:
    """Consumer hooks whose ``on_batch`` calls each of ``on_batch`` in turn (the order
    matters: what reads the state a batch left runs after what changes it)."""
    from consumers import ConsumerHooks

    def call_each(result: Any, timing: Any, records: Sequence[SourceRecord]) -> None:
        for callback in on_batch:
            callback(result, timing, records)

    return ConsumerHooks(on_batch=call_each)


__all__ = ["AppliedBatch", "ConsumerBatchLog", "chained_hooks"]
