"""Prequential (test-then-train) evaluation on the stream: was each event's item in the top-N
the user had been given before the event was applied?

Two parts, neither of which knows Kafka:

- ``PublishedRecommendationJoin`` measures the real pipeline from its outputs. It is fed the
  input events (with their partition and offset) and the recommendation messages the
  consumers published, in any interleaving, and decides each event against the user's latest
  message published *before* the event's batch was applied. A message names its source, the
  user's last record in its batch; an event at offset o is therefore judged against the
  user's latest message whose source offset is below o (the messages of earlier batches),
  and it can be judged as soon as a message with a source offset at or above o arrived
  (its own batch was published, so every earlier message was too).
- ``HitRateBoard`` keeps the score of one method: the running hit rate (a river
  ``stats.Mean``), the hit rate by how many events the user had before (0 is a first event,
  1 is "after the 1st event", ...) and the hit rate per window of the stream, for plots.

A user with no message yet (their first batch) holds nothing of their own. What a product
shows them is the fallback: the global list that ``streamrec recommend`` serves a user the
model knows nothing about. With ``fallback=True`` the join is also fed, per batch, the
fallback as it stood before that batch (``add_fallback``), and judges such events against
it; each Outcome says what it was judged against (``Served``), so a report can give both
numbers. The streaming baselines are scored with the same board (``streaming_baselines``):
they, too, answer a user they have never seen (popularity: with the popular list).

>>> join = PublishedRecommendationJoin()
>>> _ = join.add_event(InputEvent(0, "u1", "a", partition=0, offset=0))
>>> _ = join.add_event(InputEvent(1, "u1", "b", partition=0, offset=1))
>>> [(o.item_id, o.hit) for o in join.add_recommendation("u1", 0, 0, ["b", "c"])]
[('a', False)]
>>> [(o.item_id, o.hit, o.events_before) for o in join.add_recommendation("u1", 0, 1, ["c"])]
[('b', True, 1)]
>>> join.finish(), join.decided
([], 2)

With the fallback, the first event waits for the fallback of its batch:

>>> join = PublishedRecommendationJoin(fallback=True)
>>> _ = join.add_event(InputEvent(0, "u1", "a", partition=0, offset=0))
>>> join.add_recommendation("u1", 0, 0, ["b"])
[]
>>> [(o.hit, o.served.value) for o in join.add_fallback(0, 0, 0, ["a", "b"])]
[(True, 'fallback')]
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from river import stats

# The user's event counts reported by default: a first event, and after the 1st, 3rd and 10th.
DEFAULT_EVENT_COUNTS = (0, 1, 3, 10)
# Event counts are tracked exactly up to here; later events share the last bucket.
MAX_TRACKED_EVENT_COUNT = 100


class Served(StrEnum):
    """What an event was judged against."""

    PUBLISHED = "published"  # the user's own latest message before the event's batch
    FALLBACK = "fallback"  # the global list served to a user with no message yet
    NOTHING = "nothing"  # no message, and no fallback known (or not asked for): a miss


@dataclass(frozen=True, slots=True)
class InputEvent:
    """One interaction as the pipeline read it: its place in the replayed stream
    (``position``), who and what, and where it sits in the interactions topic."""

    position: int
    user_id: str
    item_id: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict on one event: ``hit`` when its item was in the recommendations the user
    held before it (``served`` says which); ``events_before`` is how many of the user's
    events preceded it."""

    position: int
    user_id: str
    item_id: str
    hit: bool
    events_before: int
    served: Served = Served.PUBLISHED
    # The item's place in the list it was judged against (0 is first); None: not in it.
    rank: int | None = None


@dataclass(slots=True)
class _UserLedger:
    """One user's messages from one partition (sorted by source offset) and undecided
    events; offsets of different partitions are not comparable."""

    message_offsets: list[int] = field(default_factory=list)
    message_items: list[tuple[str, ...]] = field(default_factory=list)
    pending: list[tuple[InputEvent, int]] = field(default_factory=list)

    def newest_offset(self) -> int:
        return self.message_offsets[-1] if self.message_offsets else -1

    def held_before(self, offset: int) -> tuple[str, ...] | None:
        """The items of the latest message whose source offset is below ``offset``; None
        when there is no such message."""
        index = bisect.bisect_left(self.message_offsets, offset)
        return self.message_items[index - 1] if index > 0 else None


@dataclass(slots=True)
class _FallbackRanges:
    """One partition's fallback lists, each for the offsets of one batch (sorted, disjoint)."""

    first_offsets: list[int] = field(default_factory=list)
    last_offsets: list[int] = field(default_factory=list)
    items: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, first_offset: int, last_offset: int, items: tuple[str, ...]) -> None:
        index = bisect.bisect_right(self.first_offsets, first_offset)
        self.first_offsets.insert(index, first_offset)
        self.last_offsets.insert(index, last_offset)
        self.items.insert(index, items)

    def at(self, offset: int) -> tuple[str, ...] | None:
        index = bisect.bisect_right(self.first_offsets, offset) - 1
        if index >= 0 and offset <= self.last_offsets[index]:
            return self.items[index]
        return None


class PublishedRecommendationJoin:
    """Joins input events with published recommendation messages into Outcomes.

    Assumes what the pipeline guarantees: a user's events are in one partition and arrive
    here in offset order, and a user's messages are published in the order of their batches
    (republished duplicates after a crash are harmless). An event delivered twice is judged
    twice: drop repeated event ids before adding them if the stream has any.

    With ``fallback``, an event whose user held no message is decided only once the
    fallback of its batch is known (``add_fallback``), or at ``finish``.
    """

    def __init__(self, *, fallback: bool = False) -> None:
        self._fallback = fallback
        self._ledgers: dict[tuple[str, int], _UserLedger] = defaultdict(_UserLedger)
        self._events_per_user: dict[str, int] = defaultdict(int)
        self._fallbacks: dict[int, _FallbackRanges] = defaultdict(_FallbackRanges)
        # Events whose batch was published, of users who held no message: by partition.
        self._awaiting_fallback: dict[int, list[tuple[InputEvent, int]]] = defaultdict(list)
        self._decided = 0

    @property
    def decided(self) -> int:
        return self._decided

    @property
    def pending(self) -> int:
        waiting = sum(len(events) for events in self._awaiting_fallback.values())
        return waiting + sum(len(ledger.pending) for ledger in self._ledgers.values())

    def add_event(self, event: InputEvent) -> list[Outcome]:
        """Take an input event; returns its outcome if its batch's message already arrived
        (and, with the fallback, the fallback it needs is known)."""
        ledger = self._ledgers[event.user_id, event.partition]
        events_before = self._events_per_user[event.user_id]
        self._events_per_user[event.user_id] += 1
        if ledger.newest_offset() >= event.offset:
            return self._try_decide(ledger, event, events_before)
        ledger.pending.append((event, events_before))
        return []

    def add_recommendation(
        self, user_id: str, partition: int, source_offset: int, item_ids: Iterable[str]
    ) -> list[Outcome]:
        """Take a published message (its user, its source partition and offset, its items);
        returns the outcomes of the events it makes decidable."""
        ledger = self._ledgers[user_id, partition]
        index = bisect.bisect_right(ledger.message_offsets, source_offset)
        ledger.message_offsets.insert(index, source_offset)
        ledger.message_items.insert(index, tuple(item_ids))
        decidable = [pair for pair in ledger.pending if pair[0].offset <= source_offset]
        if not decidable:
            return []
        ledger.pending = [pair for pair in ledger.pending if pair[0].offset > source_offset]
        outcomes = []
        for event, before in decidable:
            outcomes += self._try_decide(ledger, event, before)
        return outcomes

    def add_fallback(
        self, partition: int, first_offset: int, last_offset: int, item_ids: Iterable[str]
    ) -> list[Outcome]:
        """Take the fallback list as it stood before the batch that held the offsets
        ``first_offset``..``last_offset`` of ``partition``; returns the outcomes of the events
        that were waiting for it."""
        items = tuple(item_ids)
        self._fallbacks[partition].add(first_offset, last_offset, items)
        waiting = self._awaiting_fallback[partition]
        covered = [pair for pair in waiting if first_offset <= pair[0].offset <= last_offset]
        if not covered:
            return []
        self._awaiting_fallback[partition] = [
            pair for pair in waiting if not first_offset <= pair[0].offset <= last_offset
        ]
        return [self._record(event, before, items, Served.FALLBACK) for event, before in covered]

    def finish(self) -> list[Outcome]:
        """Decide every event still waiting (its batch published nothing, e.g. no model was
        active, or no fallback came for it) against what the user held; call when every
        stream is read to its end."""
        outcomes = []
        for ledger in self._ledgers.values():
            for event, before in ledger.pending:
                held = ledger.held_before(event.offset)
                fallback = self._fallbacks[event.partition].at(event.offset)
                outcomes.append(self._judge(event, before, held, fallback))
            ledger.pending = []
        for partition, waiting in self._awaiting_fallback.items():
            fallbacks = self._fallbacks[partition]
            outcomes += [
                self._judge(event, before, None, fallbacks.at(event.offset))
                for event, before in waiting
            ]
        self._awaiting_fallback.clear()
        return outcomes

    def _try_decide(self, ledger: _UserLedger, event: InputEvent, before: int) -> list[Outcome]:
        """Decide an event whose batch was published, unless it waits for its fallback."""
        held = ledger.held_before(event.offset)
        if held is None and self._fallback:
            fallback = self._fallbacks[event.partition].at(event.offset)
            if fallback is None:
                self._awaiting_fallback[event.partition].append((event, before))
                return []
            return [self._record(event, before, fallback, Served.FALLBACK)]
        return [self._judge(event, before, held)]

    def _judge(
        self,
        event: InputEvent,
        before: int,
        held: tuple[str, ...] | None,
        fallback: tuple[str, ...] | None = None,
    ) -> Outcome:
        if held is not None:
            return self._record(event, before, held, Served.PUBLISHED)
        if fallback is not None and self._fallback:
            return self._record(event, before, fallback, Served.FALLBACK)
        return self._record(event, before, (), Served.NOTHING)

    def _record(
        self, event: InputEvent, before: int, items: tuple[str, ...], served: Served
    ) -> Outcome:
        self._decided += 1
        rank = items.index(event.item_id) if event.item_id in items else None
        return Outcome(
            event.position, event.user_id, event.item_id, rank is not None, before, served, rank
        )


class HitRateBoard:
    """The prequential score of one method: running hit rate, by the user's event count, and
    per window of ``window`` stream positions.

    >>> board = HitRateBoard("popularity", window=2)
    >>> for position, hit, before in [(0, False, 0), (1, True, 0), (2, True, 1), (3, True, 0)]:
    ...     board.record(position, hit, before)
    >>> board.hit_rate, board.by_event_count()[0], board.windows()
    (0.75, (0.6666666666666666, 3), [(2, 0.5), (4, 1.0)])
    """

    def __init__(self, name: str, window: int = 1_000) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.name = name
        self.window = window
        self._mean = stats.Mean()
        self._by_count_hits = [0] * (MAX_TRACKED_EVENT_COUNT + 1)
        self._by_count_events = [0] * (MAX_TRACKED_EVENT_COUNT + 1)
        self._window_hits: dict[int, int] = defaultdict(int)
        self._window_events: dict[int, int] = defaultdict(int)

    @property
    def events(self) -> int:
        return int(self._mean.n)

    @property
    def hit_rate(self) -> float:
        return float(self._mean.get())

    def record(self, position: int, hit: bool, events_before: int) -> None:
        self._mean.update(1.0 if hit else 0.0)
        bucket = min(events_before, MAX_TRACKED_EVENT_COUNT)
        self._by_count_events[bucket] += 1
        self._by_count_hits[bucket] += hit
        window = position // self.window
        self._window_events[window] += 1
        self._window_hits[window] += hit

    def record_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.record(outcome.position, outcome.hit, outcome.events_before)

    def by_event_count(
        self, counts: Sequence[int] = DEFAULT_EVENT_COUNTS
    ) -> dict[int, tuple[float | None, int]]:
        """For each ``k`` in ``counts``: (hit rate of events that had exactly k earlier events
        of their user, how many such events); None when there were none."""
        rates = {}
        for count in counts:
            bucket = min(count, MAX_TRACKED_EVENT_COUNT)
            events = self._by_count_events[bucket]
            rates[count] = (self._by_count_hits[bucket] / events if events else None, events)
        return rates

    def windows(self) -> list[tuple[int, float]]:
        """(end position of the window, hit rate in it), in stream order."""
        return [
            ((window + 1) * self.window, self._window_hits[window] / events)
            for window, events in sorted(self._window_events.items())
            if events
        ]

    def to_dict(self, counts: Sequence[int] = DEFAULT_EVENT_COUNTS) -> dict[str, Any]:
        return {
            "method": self.name,
            "events": self.events,
            "hit_rate": self.hit_rate,
            "by_events_before": {
                str(count): {"hit_rate": rate, "events": events}
                for count, (rate, events) in self.by_event_count(counts).items()
            },
            "window": self.window,
            "windows": [[end, rate] for end, rate in self.windows()],
        }
