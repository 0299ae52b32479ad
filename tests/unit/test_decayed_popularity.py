"""Decayed popularity from the stream: forward decay ranks as direct decay does, batching
and the order of concurrent additions change nothing, and the stream serves it as the
new-user fallback and fuses it as a candidate source."""

from __future__ import annotations

import math
import random

import pytest

from streamrec.config import ServingSettings
from streamrec.events import InteractionEvent, SourceEvent
from streamrec.model.decayed_popularity import (
    PopularityIncrements,
    log2_sum,
    popular_candidates,
    popularity_increments,
)
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.popularity_scores import PopularityScores
from streamrec.state import Interaction
from tests.fixtures.small_model import tiny_stream

HALF_LIFE = 50.0


def random_rows(count: int, items: int, seed: int) -> list[Interaction]:
    """Events in time order over a range of many half-lives, some at equal times."""
    generator = random.Random(seed)
    return [
        Interaction(f"u{n}", f"i{generator.randrange(items):02d}", 1.0, f"e{n}", "like", n / 2)
        for n in range(count)
    ]


def learned(batches: list[list[Interaction]]) -> PopularityScores:
    scores = PopularityScores()
    for batch in batches:
        scores.add(popularity_increments(batch, HALF_LIFE))
    return scores


def direct_ranking(rows: list[Interaction], now: float) -> list[str]:
    """Items by sum over their events of 2^(-(now - t) / h), ties by id: decay applied at
    reading time, the definition forward decay must rank like."""
    decayed: dict[str, float] = {}
    for row in rows:
        decayed[row.item_id] = decayed.get(row.item_id, 0.0) + 2.0 ** (
            -(now - row.timestamp) / HALF_LIFE
        )
    return [item for item, _ in sorted(decayed.items(), key=lambda pair: (-pair[1], pair[0]))]


@pytest.mark.parametrize("seed", range(5))
def test_forward_decay_ranks_as_direct_decay(seed: int) -> None:
    rows = random_rows(2000, items=30, seed=seed)
    scores = learned([rows])
    ranking = [item for item, _ in scores.most_popular(100)]
    # The stored values never change as time passes: any reading time ranks alike.
    for now in (rows[-1].timestamp, rows[-1].timestamp + 10 * HALF_LIFE):
        assert ranking == direct_ranking(rows, now=now)


def test_forward_decay_values_are_the_decayed_sums_scaled_by_one_factor() -> None:
    rows = random_rows(500, items=10, seed=3)
    now = rows[-1].timestamp
    scores = learned([rows]).scores()
    for item_id, log_score in scores.items():
        direct = sum(
            2.0 ** (-(now - row.timestamp) / HALF_LIFE) for row in rows if row.item_id == item_id
        )
        assert log_score - now / HALF_LIFE == pytest.approx(math.log2(direct))


@pytest.mark.parametrize("batch_size", [1, 7, 50, 2000])
def test_batching_does_not_change_the_scores(batch_size: int) -> None:
    rows = random_rows(2000, items=30, seed=11)
    whole = learned([rows])
    batched = learned([rows[start : start + batch_size] for start in range(0, 2000, batch_size)])
    assert batched.scores() == pytest.approx(whole.scores(), rel=0, abs=1e-9)
    assert [item for item, _ in batched.most_popular(30)] == [
        item for item, _ in whole.most_popular(30)
    ]


def test_concurrent_additions_commute() -> None:
    """Two consumers add their partitions' batches interleaved in any order: the stored
    scores are the same (log-sum-exp is commutative and associative)."""
    rows = random_rows(1200, items=20, seed=5)
    partitions = [rows[0::2], rows[1::2]]
    batches = [
        popularity_increments(partition[start : start + 40], HALF_LIFE)
        for partition in partitions
        for start in range(0, len(partition), 40)
    ]
    reference = PopularityScores()
    for increments in batches:
        reference.add(increments)
    for seed in range(5):
        shuffled = list(batches)
        random.Random(seed).shuffle(shuffled)
        scores = PopularityScores()
        for increments in shuffled:
            scores.add(increments)
        assert scores.scores() == pytest.approx(reference.scores(), rel=0, abs=1e-9)
    assert log2_sum(3.0, 5.0) == log2_sum(5.0, 3.0)


def test_the_top_items_kept_in_order_are_a_full_sort() -> None:
    generator = random.Random(2)
    scores = PopularityScores()
    scores.most_popular(5)  # the best are kept in order from now on
    for _ in range(300):
        item = f"i{generator.randrange(40):02d}"
        scores.add(PopularityIncrements([item], [generator.uniform(0.0, 10.0)]))
        everything = sorted(scores.scores().items(), key=lambda pair: (-pair[1], pair[0]))
        assert scores.most_popular(5) == everything[:5]
    assert scores.most_popular(12) == everything[:12]


def test_popular_candidates_exclude_seen_items_and_score_relative_to_the_top() -> None:
    popular = [("a", 10.0), ("b", 9.0), ("c", 8.0)]
    chosen = popular_candidates(popular, seen={"a"}, count=5)
    assert [(item.item_id, item.score) for item in chosen] == [("b", 0.5), ("c", 0.25)]


def event(n: int, user: str, item: str, time: float) -> AcceptedInteraction:
    interaction = InteractionEvent(f"e{n:04d}", user, item, "like", time)
    return AcceptedInteraction(interaction, 1.0, SourceEvent("interactions", 0, n, time))


BASE = ServingSettings(top_memberships=2, recommendations=3)


def test_a_new_user_gets_the_items_popular_now() -> None:
    settings = BASE.model_copy(
        update={"popularity_fallback": True, "popularity_half_life_hours": 1.0}
    )
    stream = tiny_stream(settings)
    # "old" was taken by many users long ago, "new" by two users just now.
    events = [event(n, f"u{n}", "old", float(n)) for n in range(10)]
    events += [event(10 + n, f"v{n}", "new", 10 * 3600.0 + n) for n in range(2)]
    stream.learn_many(events)
    recommended = stream.recommend_one("stranger")
    assert [item.item_id for item in recommended] == ["new", "old"]
    assert recommended[0].score == 1.0
    # A known user's own items are never recommended, whatever the source.
    assert "new" not in [item.item_id for item in stream.recommend_one("v0")]


def test_the_stream_fuses_the_popularity_for_known_users() -> None:
    settings = BASE.model_copy(update={"popularity_weight": 1.0, "popularity_half_life_hours": 1.0})
    stream = tiny_stream(settings)
    events = [event(n, "u1", f"a{n}", float(n)) for n in range(3)]
    events += [event(10 + n, f"v{n}", "hot", 3600.0 + n) for n in range(5)]
    stream.learn_many(events)
    assert "hot" in [item.item_id for item in stream.recommend_one("u1")]
    # Off (weight 0, no fallback): no scores are kept at all.
    off = tiny_stream(BASE)
    off.learn_many(events)
    assert off.state.most_popular_items(5) == []
