"""Prequential replay in one regime for every method: lists refreshed after every event, or
only at the boundaries of batches of B events.

``replay_in_batches`` cuts the stream (after a warm-up the methods learn without being
scored) into batches of ``batch_size`` events. For each batch it asks the method for the
lists of the batch's users as they stand, judges every event of the batch against its
user's list, and only then lets the method learn the batch. ``batch_size`` 1 is the regime
"after every event" (what a user feels when a consumer batch is shorter than the gap
between their clicks); a larger B is what the pipeline does when a dataset is replayed at
full speed, where a user's burst inside one batch is judged against a stale list. Comparing
methods means replaying them all with the same B.

A method is a ``BatchRecommender`` (recommend for many users, learn many events);
``StreamingBaselineInBatches`` makes one of a per-event ``StreamingRecommender``. A method
that can tell which users it has no list of its own for (``KnowsOwnLists``, e.g. streamrec,
which serves them its global fallback) is also scored with those events counted as misses,
as the pipeline's "own lists only" row.

Each event's score is its item's rank in the list: HR@N counts it when it is there, NDCG@N
adds 1/log2(rank + 2) (one relevant item per event). The replay also times each method's
answering and learning of the scored batches (cost per event) and of the warm-up.

>>> from streamrec.evaluation.streaming_baselines import StreamingPopularity
>>> events = accepted_events([("u1", "a", 1.0), ("u2", "a", 1.0), ("u3", "a", 1.0),
...                           ("u3", "b", 1.0)])
>>> every_event = replay_in_batches(
...     events, StreamingBaselineInBatches(StreamingPopularity()), batch_size=1, count=1)
>>> every_event.board.hit_rate, every_event.board.ndcg
(0.5, 0.5)
>>> one_batch = replay_in_batches(
...     events, StreamingBaselineInBatches(StreamingPopularity()), batch_size=4, count=1)
>>> one_batch.board.hit_rate  # nothing learned before the batch: no list at all
0.0
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from river import stats

from streamrec.evaluation.prequential import (
    DEFAULT_EVENT_COUNTS,
    MAX_TRACKED_EVENT_COUNT,
    HitRateBoard,
)
from streamrec.evaluation.streaming_baselines import StreamEvent, StreamingRecommender
from streamrec.events import InteractionEvent, SourceEvent
from streamrec.model.interaction_rule import AcceptedInteraction


class BatchRecommender(Protocol):
    """A method the regime replay drives."""

    name: str

    def recommend_many(self, user_ids: Sequence[str], count: int) -> list[list[str]]:
        """Each user's top ``count`` as the method stands, best first, never a seen item."""
        ...

    def learn_many(self, events: Sequence[AcceptedInteraction]) -> None:
        """Learn ``events``, in stream order."""
        ...


@runtime_checkable
class KnowsOwnLists(Protocol):
    """A method that can say which users it would answer with a global fallback."""

    def without_own_list(self, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` the method has no list of their own for."""
        ...


class StreamingBaselineInBatches:
    """A per-event ``StreamingRecommender`` as a ``BatchRecommender``: it answers every user
    of a batch before learning any of its events, each without the items they had before."""

    def __init__(self, recommender: StreamingRecommender) -> None:
        self.recommender = recommender
        self.name = recommender.name
        self._seen: dict[str, set[str]] = defaultdict(set)

    def recommend_many(self, user_ids: Sequence[str], count: int) -> list[list[str]]:
        return [
            self.recommender.recommend(user_id, count, self._seen[user_id]) for user_id in user_ids
        ]

    def learn_many(self, events: Sequence[AcceptedInteraction]) -> None:
        for accepted in events:
            user_id, item_id = accepted.event.user_id, accepted.event.item_id
            self.recommender.learn(user_id, item_id, accepted.weight)
            self._seen[user_id].add(item_id)


class RankedHitBoard(HitRateBoard):
    """A ``HitRateBoard`` that also keeps NDCG: each event records the rank of its item in
    the list it was judged against (None: not in it).

    >>> board = RankedHitBoard("m", window=10)
    >>> board.record_rank(0, 0, 0); board.record_rank(1, 1, 1); board.record_rank(2, None, 2)
    >>> round(board.hit_rate, 4), round(board.ndcg, 4), round(board.ndcg_by_event_count()[1][0], 4)
    (0.6667, 0.5436, 0.6309)
    """

    def __init__(self, name: str, window: int = 1_000) -> None:
        super().__init__(name, window)
        self._ndcg = stats.Mean()
        self._ndcg_by_count = [0.0] * (MAX_TRACKED_EVENT_COUNT + 1)

    @property
    def ndcg(self) -> float:
        return float(self._ndcg.get())

    def record_rank(self, position: int, rank: int | None, events_before: int) -> None:
        gain = 0.0 if rank is None else 1.0 / math.log2(rank + 2)
        self.record(position, rank is not None, events_before)
        self._ndcg.update(gain)
        self._ndcg_by_count[min(events_before, MAX_TRACKED_EVENT_COUNT)] += gain

    def ndcg_by_event_count(
        self, counts: Sequence[int] = DEFAULT_EVENT_COUNTS
    ) -> dict[int, tuple[float | None, int]]:
        """As ``by_event_count``, for NDCG."""
        by_count = self.by_event_count(counts)
        return {
            count: (
                None
                if events == 0
                else self._ndcg_by_count[min(count, MAX_TRACKED_EVENT_COUNT)] / events,
                events,
            )
            for count, (_, events) in by_count.items()
        }

    def to_dict(self, counts: Sequence[int] = DEFAULT_EVENT_COUNTS) -> dict[str, Any]:
        return {
            **super().to_dict(counts),
            "ndcg": self.ndcg,
            "ndcg_by_events_before": {
                str(count): {"ndcg": value, "events": events}
                for count, (value, events) in self.ndcg_by_event_count(counts).items()
            },
        }


@dataclass(frozen=True, slots=True)
class MethodSeconds:
    """Where a method's time went: learning the warm-up, then answering and learning the
    scored batches."""

    warm_up: float = 0.0
    answering: float = 0.0
    learning: float = 0.0

    def per_event_ms(self, events: int) -> float | None:
        """Answering and learning per scored event, in milliseconds."""
        return None if events == 0 else (self.answering + self.learning) / events * 1e3


@dataclass(slots=True)
class ReplayScore:
    """One method's replay: its board, the same outcomes with fallback-served events as
    misses (a ``KnowsOwnLists`` method only), how many scored events it answered with its
    fallback, and its time."""

    board: RankedHitBoard
    own_lists: RankedHitBoard | None = None
    fallback_events: int = 0
    seconds: MethodSeconds = field(default_factory=MethodSeconds)


def replay_in_batches(
    events: Sequence[AcceptedInteraction],
    method: BatchRecommender,
    *,
    batch_size: int = 1,
    count: int,
    window: int = 1_000,
    score_from: int = 0,
    own_lists_name: str | None = None,
    on_progress: Callable[[int, RankedHitBoard], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    batch_ends: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
) -> ReplayScore:
    """Replay ``events`` through ``method`` batch by batch (module text); events at a
    position below ``score_from`` are learned, not scored. ``on_progress`` is told the
    events replayed so far after each batch.

    The batches are the first ``score_from`` events (learned in one call), then batches of
    ``batch_size``. Given ``batch_ends`` (where each batch ends in ``events``: the batches
    another process applied, e.g. the pipeline's consumer, with ``events`` in the order it
    applied them), those batches instead; ``positions`` then gives each event's place in the
    stream (for ``score_from`` and the plot's windows; default its index). The leading
    batches without a scored event are learned in one call.

    >>> from streamrec.evaluation.streaming_baselines import StreamingPopularity
    >>> events = accepted_events([("u1", "a", 1.0), ("u2", "a", 1.0), ("u3", "b", 1.0),
    ...                           ("u4", "a", 1.0)])
    >>> replay = replay_in_batches(events, StreamingBaselineInBatches(StreamingPopularity()),
    ...                            count=1, score_from=1, batch_ends=[2, 4])
    >>> replay.board.events, round(replay.board.hit_rate, 3)  # u2 was judged against nothing
    (3, 0.333)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if positions is None:
        positions = range(len(events))
    ends = (
        list(batch_ends)
        if batch_ends is not None
        else _fixed_batch_ends(len(events), batch_size, score_from)
    )
    if ends and ends[-1] != len(events):
        raise ValueError(f"the batches end at {ends[-1]}, the events at {len(events)}")
    score = ReplayScore(RankedHitBoard(method.name, window))
    knows_own_lists = isinstance(method, KnowsOwnLists)
    if knows_own_lists:
        score.own_lists = RankedHitBoard(own_lists_name or f"{method.name}, own lists only", window)
    events_per_user: dict[str, int] = defaultdict(int)
    # The warm-up: the leading batches that hold no scored event, learned in one call.
    warm_up_batches = 0
    while warm_up_batches < len(ends):
        start = ends[warm_up_batches - 1] if warm_up_batches else 0
        if any(positions[index] >= score_from for index in range(start, ends[warm_up_batches])):
            break
        warm_up_batches += 1
    warm_up_end = ends[warm_up_batches - 1] if warm_up_batches else 0
    for accepted in events[:warm_up_end]:
        events_per_user[accepted.event.user_id] += 1
    started = clock()
    if warm_up_end:
        method.learn_many(events[:warm_up_end])
    warm_up, answering, learning = clock() - started, 0.0, 0.0
    start = warm_up_end
    for end in ends[warm_up_batches:]:
        batch = events[start:end]
        users = list(dict.fromkeys(accepted.event.user_id for accepted in batch))
        started = clock()
        fallback = method.without_own_list(users) if knows_own_lists else set()  # type: ignore[attr-defined]
        lists = dict(zip(users, method.recommend_many(users, count), strict=True))
        answered = clock()
        for index, accepted in enumerate(batch, start):
            user_id, item_id = accepted.event.user_id, accepted.event.item_id
            before = events_per_user[user_id]
            events_per_user[user_id] += 1
            position = positions[index]
            if position < score_from:
                continue
            ranked = lists[user_id]
            rank = ranked.index(item_id) if item_id in ranked else None
            score.board.record_rank(position, rank, before)
            if score.own_lists is not None:
                own = user_id not in fallback
                score.own_lists.record_rank(position, rank if own else None, before)
                score.fallback_events += not own
        scored = clock()
        method.learn_many(batch)
        learning += clock() - scored
        answering += answered - started
        if on_progress is not None:
            on_progress(end, score.board)
        start = end
    score.seconds = MethodSeconds(warm_up, answering, learning)
    return score


def _fixed_batch_ends(events: int, batch_size: int, score_from: int) -> list[int]:
    """The ends of the first ``score_from`` events, then of batches of ``batch_size``.

    >>> _fixed_batch_ends(10, 4, 3), _fixed_batch_ends(3, 1, 0)
    ([3, 7, 10], [1, 2, 3])
    """
    first = [score_from] if score_from else []
    return first + [
        min(end, events) for end in range(score_from + batch_size, events + batch_size, batch_size)
    ]


def accepted_events(events: Sequence[StreamEvent]) -> list[AcceptedInteraction]:
    """(user, item, weight) triples as accepted interactions, timed by their position.

    >>> [(e.event.user_id, e.event.item_id, e.weight) for e in accepted_events([("u", "i", 0.5)])]
    [('u', 'i', 0.5)]
    """
    return [
        AcceptedInteraction(
            InteractionEvent(f"e{position}", user_id, item_id, "like", float(position)),
            weight,
            SourceEvent("stream", 0, position, float(position)),
        )
        for position, (user_id, item_id, weight) in enumerate(events)
    ]


__all__ = [
    "BatchRecommender",
    "KnowsOwnLists",
    "MethodSeconds",
    "RankedHitBoard",
    "ReplayScore",
    "StreamingBaselineInBatches",
    "accepted_events",
    "replay_in_batches",
]
