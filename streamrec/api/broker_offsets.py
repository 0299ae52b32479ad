"""The broker's side of the lag: each input partition's log range, as ``streamrec status``
reads it (``streamrec.kafka.read_log_ranges``), for a process that asks again and again.

One consumer outside any group is kept open between reads. A read is reused for
``fresh_seconds``, so a dashboard refreshed by several people costs the broker one request;
after a failure (the broker is down, or none is configured) the reader says why and waits
``retry_seconds`` before trying again, so pages stay fast while the broker is away.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from streamrec.config import Settings
from streamrec.offsets import LogRange, StoredOffsets

if TYPE_CHECKING:
    from kafka import KafkaConsumer

TopicPartition = tuple[str, int]
FRESH_SECONDS = 2.0
RETRY_SECONDS = 30.0


class BrokerLogRanges:
    def __init__(
        self,
        settings: Settings,
        *,
        fresh_seconds: float = FRESH_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._fresh = fresh_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._consumer: KafkaConsumer | None = None
        self._last: tuple[float, dict[TopicPartition, LogRange], str | None] | None = None

    def read(
        self, topics: Sequence[str], stored: Mapping[TopicPartition, StoredOffsets]
    ) -> tuple[dict[TopicPartition, LogRange], str | None]:
        """(each partition's log range, None), or an empty map and why the broker could not
        be read."""
        with self._lock:
            now = self._clock()
            if self._last is not None:
                read_at, ranges, error = self._last
                if now - read_at < (self._retry if error else self._fresh):
                    return ranges, error
            ranges, error = self._read_now(topics, stored)
            self._last = (now, ranges, error)
            return ranges, error

    def close(self) -> None:
        with self._lock:
            self._close_consumer()

    def _read_now(
        self, topics: Sequence[str], stored: Mapping[TopicPartition, StoredOffsets]
    ) -> tuple[dict[TopicPartition, LogRange], str | None]:
        from kafka.errors import KafkaError

        from streamrec.errors import UserFacingError
        from streamrec.kafka import create_consumer, read_log_ranges

        try:
            if self._consumer is None:
                self._consumer = create_consumer(self._settings, group_id=None)
            consumer = self._consumer
            partitions = [
                (topic, partition)
                for topic in topics
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            return read_log_ranges(self._settings, consumer, partitions, stored), None
        except (KafkaError, UserFacingError, OSError) as error:
            self._close_consumer()
            return {}, f"cannot read the broker's offsets: {error}"

    def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            # Closing a consumer of a lost broker may fail too; it is dropped either way.
            with contextlib.suppress(Exception):
                consumer.close()
