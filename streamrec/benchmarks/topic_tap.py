"""Reading the pipeline's input and output topics back, as an outside observer would.

A ``TopicTap`` is a kafka-python consumer outside any group, assigned every partition of the
topics it watches from their beginning; it never commits, so it cannot disturb the pipeline.
``PrequentialTap`` feeds what it reads to a ``PublishedRecommendationJoin``: interaction
events (with their partition and offset) and the recommendation messages the consumers
published. What it measures is therefore the pipeline's real output, not a re-enactment.
Given a ``FallbackRecorder`` (hooked into the consumer), it also judges a user's events
before their first message against the fallback a new user was served then.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kafka.structs import TopicPartition

from streamrec.config import Settings
from streamrec.evaluation.prequential import InputEvent, Outcome, PublishedRecommendationJoin
from streamrec.kafka import create_consumer
from streamrec.validation import Rejection, parse_interaction
from streamrec.wire.recommendations import decode_recommendation

if TYPE_CHECKING:
    from streamrec.benchmarks.served_fallback import FallbackRecorder

POLL_TIMEOUT_MS = 200


class TopicTap:
    """Reads ``topics`` from their beginning; ``poll()`` returns raw kafka-python records."""

    def __init__(self, settings: Settings, topics: Iterable[str]) -> None:
        self._consumer = create_consumer(settings, group_id=None, max_poll_records=10_000)
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning()
        self.partitions = partitions

    def poll(self, timeout_ms: int = POLL_TIMEOUT_MS) -> list[Any]:
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        return [record for records in polled.values() for record in records]

    def caught_up(self) -> bool:
        """True when every partition was read to its current end."""
        ends = self._consumer.end_offsets(self.partitions)
        return all(self._consumer.position(partition) >= ends[partition] for partition in ends)

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicTap:
        return self

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(slots=True)
class TapCounts:
    events: int = 0
    messages: int = 0
    # Records that are not ours (another producer's) or not valid: not scored.
    skipped: int = 0


class PrequentialTap:
    """Reads the interactions and recommendations topics and joins them into Outcomes.

    ``positions`` maps each replayed event id to its place in the replayed stream; events
    with other ids are not scored. With ``measure_latency``, the seconds from each input
    record's Kafka timestamp to that of the message that first answered it are given by
    ``latencies()``. With ``fallbacks``, an event of a user without a message yet is judged
    against the fallback of its batch (``Served.FALLBACK``) instead of counting as a miss.
    """

    def __init__(
        self,
        settings: Settings,
        positions: Mapping[str, int],
        *,
        measure_latency: bool = False,
        fallbacks: FallbackRecorder | None = None,
    ) -> None:
        self._settings = settings
        self._positions = positions
        self._topics = settings.topics
        self._fallbacks = fallbacks
        self.join = PublishedRecommendationJoin(fallback=fallbacks is not None)
        self.counts = TapCounts()
        self._measure_latency = measure_latency
        self._input_times: list[tuple[tuple[str, int], int, float]] = []
        self._message_times: list[tuple[tuple[str, int], int, float]] = []
        self._tap = TopicTap(settings, [self._topics.interactions, self._topics.recommendations])

    def read(self, timeout_ms: int = POLL_TIMEOUT_MS) -> list[Outcome]:
        """Outcomes decided by what one poll brought."""
        outcomes: list[Outcome] = []
        for record in self._tap.poll(timeout_ms):
            if record.topic == self._topics.interactions:
                outcomes += self._take_event(record)
            else:
                outcomes += self._take_message(record)
        return outcomes + self._take_fallbacks()

    def finish(self) -> list[Outcome]:
        """Read what is left, then decide every waiting event; closes the tap."""
        outcomes: list[Outcome] = []
        while not self._tap.caught_up():
            outcomes += self.read()
        outcomes += self.read(timeout_ms=0)
        self._tap.close()
        return outcomes + self.join.finish()

    def latencies(self) -> list[float]:
        """Event-to-recommendation seconds of every answered input (``measure_latency``), in
        the order the inputs were produced (the topic is read partition by partition)."""
        by_time = sorted(self._input_times, key=lambda input_time: input_time[2])
        return answer_latencies(by_time, self._message_times)

    def close(self) -> None:
        self._tap.close()

    def _take_fallbacks(self) -> list[Outcome]:
        if self._fallbacks is None:
            return []
        outcomes: list[Outcome] = []
        for fallback in self._fallbacks.drain():
            outcomes += self.join.add_fallback(
                fallback.partition, fallback.first_offset, fallback.last_offset, fallback.item_ids
            )
        return outcomes

    def _take_event(self, record: Any) -> list[Outcome]:
        parsed = parse_interaction(record.value, self._settings.events)
        position = None if isinstance(parsed, Rejection) else self._positions.get(parsed.event_id)
        if position is None or isinstance(parsed, Rejection):
            self.counts.skipped += 1
            return []
        self.counts.events += 1
        if self._measure_latency and record.timestamp is not None and record.timestamp >= 0:
            self._input_times.append(
                ((parsed.user_id, record.partition), record.offset, record.timestamp / 1000.0)
            )
        event = InputEvent(
            position, parsed.user_id, parsed.item_id, record.partition, record.offset
        )
        return self.join.add_event(event)

    def _take_message(self, record: Any) -> list[Outcome]:
        try:
            message = decode_recommendation(record.value)
        except ValueError:
            self.counts.skipped += 1
            return []
        if message.source is None:
            self.counts.skipped += 1
            return []
        self.counts.messages += 1
        if self._measure_latency:
            key = (message.user_id, message.source.partition)
            self._message_times.append((key, message.source.offset, record.timestamp / 1000.0))
        return self.join.add_recommendation(
            message.user_id,
            message.source.partition,
            message.source.offset,
            (item.item_id for item in message.items),
        )


def answer_latencies(
    inputs: Iterable[tuple[tuple[str, int], int, float]],
    messages: Iterable[tuple[tuple[str, int], int, float]],
) -> list[float]:
    """Seconds from each input record to the first message that answered it.

    Both hold ((user id, partition), offset, Kafka time): the input record's offset, or the
    message's source offset. A message answers every input record of its user at or before
    its source that no earlier message answered (one message per user per batch).

    >>> answer_latencies([(("u", 0), 3, 10.0), (("u", 0), 5, 10.5), (("u", 0), 9, 11.0)],
    ...                  [(("u", 0), 5, 11.0), (("u", 0), 5, 12.0)])
    [1.0, 0.5]
    """
    published: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for key, source_offset, at in messages:
        published.setdefault(key, []).append((source_offset, at))
    for answers in published.values():
        answers.sort()
    latencies = []
    for key, offset, at in inputs:
        answers = published.get(key, [])
        index = bisect.bisect_left(answers, (offset, -math.inf))
        if index < len(answers):
            latencies.append(max(0.0, answers[index][1] - at))
    return latencies
