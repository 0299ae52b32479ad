"""Short-term item neighbours: incremental counts with a bounded history, new items, the
user's own items excluded, the rank fusion with the vote, and the stream with them on."""

from __future__ import annotations

import random

import pytest

from streamrec.config import ServingSettings
from streamrec.evaluation.streaming_neighbours import ItemCooccurrence
from streamrec.events import InteractionEvent, RecommendedItem, SourceEvent
from streamrec.model.cooccurrence_counts import CooccurrenceCounts
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.item_neighbours import (
    cooccurrence_increments,
    neighbour_candidates,
    recent_items,
)
from streamrec.model.rank_fusion import fuse
from streamrec.state import Interaction
from tests.fixtures.small_model import tiny_stream


def row(user: str, item: str, time: float) -> Interaction:
    return Interaction(user, item, 1.0, f"e{time:09.0f}", "like", time)


def random_stream(events: int, users: int, items: int, seed: int) -> list[Interaction]:
    """Events in time order; a user may take an item again (it adds no co-occurrence)."""
    generator = random.Random(seed)
    return [
        row(f"u{generator.randrange(users)}", f"i{generator.randrange(items)}", float(time))
        for time in range(events)
    ]


class Learner:
    """The counts learned batch by batch, as EfficientRecStream learns them."""

    def __init__(self, history: int) -> None:
        self.history = history
        self.counts = CooccurrenceCounts()
        self.stored: dict[str, dict[str, Interaction]] = {}
        self.rows_written: list[int] = []

    def learn(self, batch: list[Interaction]) -> None:
        stored = {user: list(rows.values()) for user, rows in self.stored.items()}
        increments = cooccurrence_increments(stored, batch, self.history)
        self.rows_written.append(len(increments))
        self.counts.add(increments)
        for interaction in batch:
            self.stored.setdefault(interaction.user_id, {})[interaction.item_id] = interaction

    def recommend(self, user: str, count: int, neighbour_count: int = 10_000) -> list[str]:
        rows = list(self.stored.get(user, {}).values())
        recent = recent_items(rows, self.history)
        neighbours = self.counts.neighbours(recent, neighbour_count)
        popularity = self.counts.popularity({o for pairs in neighbours.values() for o, _ in pairs})
        seen = {interaction.item_id for interaction in rows}
        return [
            item.item_id
            for item in neighbour_candidates(recent, neighbours, popularity, seen, count)
        ]


def scores(learner: Learner, user: str, items: list[str]) -> list[float]:
    """The neighbour scores of ``items`` for ``user``, rounded, sorted."""
    recent = recent_items(learner.stored[user].values(), learner.history)
    neighbours = learner.counts.neighbours(recent, 10_000)
    popularity = learner.counts.popularity(set(items))
    everything = neighbour_candidates(recent, neighbours, popularity, set(), 10_000)
    by_item = {item.item_id: item.score for item in everything}
    return sorted(round(by_item.get(item, 0.0), 9) for item in items)


def test_incremental_counts_score_as_the_co_occurrence_baseline() -> None:
    # Each user takes each item once, so the baseline's interaction counts are the
    # numbers of users: with every neighbour read, the two rank alike.
    generator = random.Random(3)
    events = []
    for time in range(600):
        user = f"u{generator.randrange(15)}"
        taken = {event.item_id for event in events if event.user_id == user}
        item = f"i{generator.randrange(60)}"
        if item not in taken:
            events.append(row(user, item, float(time)))
    learner, baseline = Learner(history=5), ItemCooccurrence(recent=5)
    compared = 0
    for event in events:
        ours = learner.recommend(event.user_id, 10)
        if ours:
            seen = set(learner.stored.get(event.user_id, {}))
            theirs = baseline.recommend(event.user_id, len(ours), seen=seen)
            # The same scores; equal ones are ordered otherwise (the baseline: the item
            # seen first; here: the item id), so the lists are compared as score sets.
            assert scores(learner, event.user_id, ours) == scores(learner, event.user_id, theirs)
            compared += 1
        learner.learn([event])
        baseline.learn(event.user_id, event.item_id, 1.0)
    assert compared > 100


def test_counts_do_not_depend_on_how_the_stream_is_cut_into_batches() -> None:
    events = random_stream(400, users=12, items=50, seed=1)
    one_by_one, in_batches = Learner(history=4), Learner(history=4)
    for event in events:
        one_by_one.learn([event])
    for start in range(0, len(events), 37):
        in_batches.learn(events[start : start + 37])
    items = {f"i{item}" for item in range(50)}
    assert one_by_one.counts.neighbours(items, 1000) == in_batches.counts.neighbours(items, 1000)
    assert one_by_one.counts.popularity(items) == in_batches.counts.popularity(items)


@pytest.mark.parametrize("history", [1, 3, 20])
def test_an_event_writes_at_most_twice_the_history_plus_one_counts(history: int) -> None:
    learner = Learner(history)
    for event in random_stream(300, users=3, items=200, seed=2):
        learner.learn([event])
    assert max(learner.rows_written) <= 2 * history + 1
    assert max(learner.rows_written) == 2 * history + 1  # the users took enough items


def test_only_the_previous_history_items_count_with_a_new_item() -> None:
    learner = Learner(history=2)
    learner.learn([row("u", item, time) for time, item in enumerate("abcd")])
    # d came after b and c only; a is too far back.
    assert dict(learner.counts.neighbours(["d"], 10)["d"]) == {"b": 1.0, "c": 1.0}


def test_taking_an_item_again_adds_nothing() -> None:
    learner = Learner(history=3)
    learner.learn([row("u", "a", 1.0), row("u", "b", 2.0)])
    before = learner.counts.neighbours(["a", "b"], 10), learner.counts.popularity(["a", "b"])
    learner.learn([Interaction("u", "a", -1.0, "e3", "dislike", 3.0)])
    assert (learner.counts.neighbours(["a", "b"], 10), learner.counts.popularity(["a", "b"])) == (
        before
    )


def test_a_new_item_is_a_neighbour_from_its_first_event() -> None:
    learner = Learner(history=3)
    learner.learn([row("u1", "old", 1.0), row("u2", "old", 2.0)])
    learner.learn([row("u1", "brand-new", 3.0)])
    assert learner.recommend("u2", 5) == ["brand-new"]


def test_the_users_own_items_are_never_candidates() -> None:
    learner = Learner(history=5)
    for event in random_stream(300, users=5, items=30, seed=4):
        learner.learn([event])
    for user, rows in learner.stored.items():
        assert not set(learner.recommend(user, 50)) & set(rows)


def test_neighbours_keep_the_largest_counts_ties_by_item_id() -> None:
    counts = CooccurrenceCounts()
    learner = Learner(history=10)
    learner.counts = counts
    # a co-occurs twice with z, once with each of y, x, w.
    learner.learn([row("u1", item, time) for time, item in enumerate(["a", "z", "y", "x", "w"])])
    learner.learn([row("u2", item, time) for time, item in enumerate(["a", "z"], 10)])
    assert counts.neighbours(["a"], 3) == {"a": [("z", 2.0), ("w", 1.0), ("x", 1.0)]}


def test_recent_items_weigh_more_with_a_half_life() -> None:
    neighbours = {"new": [("x", 1.0)], "old": [("y", 1.5)]}
    alike = neighbour_candidates(["new", "old"], neighbours, {}, set(), 2)
    recent_first = neighbour_candidates(["new", "old"], neighbours, {}, set(), 2, half_life=1.0)
    assert [item.item_id for item in alike] == ["y", "x"]
    assert [item.item_id for item in recent_first] == ["x", "y"]


def test_fusion_puts_items_both_sources_name_first_and_keeps_vote_positions() -> None:
    voted = [RecommendedItem(item, 1.0) for item in ["a", "b", "c"]]
    neighbours = [RecommendedItem(item, 1.0) for item in ["x", "c", "y"]]
    fused = fuse(voted, neighbours, 0.5, count=4)
    assert [entry.item.item_id for entry in fused] == ["c", "a", "x", "b"]
    assert [entry.position for entry in fused] == [2, 0, None, 1]
    # Weight 1: the neighbours' order; the vote only breaks in for items they share.
    heavy = fuse(voted, neighbours, 1.0, count=3)
    assert [entry.item.item_id for entry in heavy] == ["x", "c", "y"]


def accepted(position: int, user: str, item: str) -> AcceptedInteraction:
    event = InteractionEvent(f"e{position:05d}", user, item, "like", float(position))
    return AcceptedInteraction(event, 1.0, SourceEvent("interactions", 0, position, position))


SMALL = {"top_memberships": 2, "recommendations": 5, "shortlist_refresh_seconds": 0.0}


def test_the_stream_recommends_the_neighbours_of_the_users_last_items() -> None:
    stream = tiny_stream(ServingSettings(**SMALL, neighbours=True, neighbour_weight=1.0))
    # Many users take p0..p3; those who took "seed" went on to "follow".
    pairs = [(f"crowd{user}", f"p{item}") for user in range(8) for item in range(4)]
    pairs += [(f"fan{n}", item) for n in range(3) for item in ["seed", "follow"]]
    events = [accepted(position, user, item) for position, (user, item) in enumerate(pairs)]
    stream.learn_many(events)
    stream.learn_many([accepted(500, "newcomer", "seed")])
    voted = stream.vote_many(["newcomer"])[0]
    assert voted.items[0].item_id == "follow"
    assert "seed" not in [item.item_id for item in voted.items]
    assert len(voted.lead_clusters) == len(voted.items)
    off = tiny_stream(ServingSettings(**SMALL))
    off.learn_many(events)
    assert off.state.item_neighbours(["seed"], 5) == {}  # nothing counted while off


def test_histories_are_recommended_from_their_last_items() -> None:
    from streamrec.model.history import UserHistory

    stream = tiny_stream(ServingSettings(**SMALL, neighbours=True, neighbour_weight=1.0))
    stream.learn_many(
        [
            accepted(2 * n + offset, f"fan{n}", item)
            for n in range(3)
            for offset, item in enumerate(["seed", "follow"])
        ]
    )
    [items] = stream.recommend_histories([UserHistory("h", [("seed", 1.0)])])
    assert items[0].item_id == "follow"
