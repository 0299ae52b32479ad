"""Prequential scoring: the join of inputs and published recommendations, the score board,
and the streaming baselines."""

from __future__ import annotations

import doctest
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from river import optim, reco

from streamrec.evaluation import prequential, streaming_baselines
from streamrec.evaluation.prequential import (
    HitRateBoard,
    InputEvent,
    PublishedRecommendationJoin,
    Served,
)
from streamrec.evaluation.streaming_baselines import (
    ItemCounts,
    RiverRanker,
    StreamingPopularity,
    replay_baselines,
    river_baselines,
)

# One partition's events, (user, item), and the sizes of the batches the consumer cuts it into.
_EVENTS = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(list("abcde"))),
    min_size=1,
    max_size=40,
)
_BATCH_SIZES = st.lists(st.integers(1, 6), max_size=20)


def _simulate_pipeline(
    events: list[tuple[str, str]], batch_sizes: list[int], recommend: dict[str, list[str]]
) -> tuple[list[InputEvent], list[tuple[str, int, list[str]]], list[bool]]:
    """Events of one partition cut into batches; after each batch, one message per touched
    user (source: their last offset in the batch). Returns the inputs, the messages, and the
    expected verdicts computed the slow, obvious way: what the user held before the batch."""
    inputs = [
        InputEvent(offset, user, item, 0, offset) for offset, (user, item) in enumerate(events)
    ]
    messages: list[tuple[str, int, list[str]]] = []
    held: dict[str, list[str]] = {}
    expected: list[bool] = []
    start = 0
    sizes = iter(batch_sizes)
    while start < len(events):
        end = min(len(events), start + max(1, next(sizes, 3)))
        batch = inputs[start:end]
        expected += [event.item_id in held.get(event.user_id, []) for event in batch]
        last_offset = {event.user_id: event.offset for event in batch}
        for user, offset in last_offset.items():
            items = recommend[f"{user}@{offset}"]
            messages.append((user, offset, items))
            held[user] = items
        start = end
    return inputs, messages, expected


@given(
    events=_EVENTS,
    batch_sizes=_BATCH_SIZES,
    interleaving_seed=st.integers(0, 1_000),
)
def test_join_judges_each_event_by_what_was_published_before_its_batch(
    events: list[tuple[str, str]], batch_sizes: list[int], interleaving_seed: int
) -> None:
    rng = random.Random(interleaving_seed)
    recommend = {
        f"{user}@{offset}": rng.sample(list("abcde"), 2)
        for offset, (user, _) in enumerate(events)
        for user in ("u1", "u2", "u3")
    }
    inputs, messages, expected = _simulate_pipeline(events, batch_sizes, recommend)
    # The observer reads the two topics at its own pace: any interleaving that keeps each
    # stream in order must give the same verdicts.
    join = PublishedRecommendationJoin()
    outcomes = []
    input_queue, message_queue = list(inputs), list(messages)
    while input_queue or message_queue:
        if input_queue and (not message_queue or rng.random() < 0.5):
            outcomes += join.add_event(input_queue.pop(0))
        else:
            user, offset, items = message_queue.pop(0)
            outcomes += join.add_recommendation(user, 0, offset, items)
    outcomes += join.finish()

    verdicts = {outcome.position: outcome.hit for outcome in outcomes}
    assert len(outcomes) == len(events)
    assert [verdicts[position] for position in range(len(events))] == expected


def _simulate_pipeline_with_fallback(
    events: list[tuple[str, str]], batch_sizes: list[int], rng: random.Random
) -> tuple[
    list[InputEvent],
    list[tuple[str, int, list[str]]],
    list[tuple[int, int, list[str]]],
    list[tuple[bool, Served]],
]:
    """As _simulate_pipeline, plus the fallback before each batch (its first and last offset,
    its items); a user who held nothing before the batch is judged against that fallback."""
    inputs = [
        InputEvent(offset, user, item, 0, offset) for offset, (user, item) in enumerate(events)
    ]
    messages: list[tuple[str, int, list[str]]] = []
    fallbacks: list[tuple[int, int, list[str]]] = []
    held: dict[str, list[str]] = {}
    expected: list[tuple[bool, Served]] = []
    start = 0
    sizes = iter(batch_sizes)
    while start < len(events):
        end = min(len(events), start + max(1, next(sizes, 3)))
        batch = inputs[start:end]
        fallback = rng.sample(list("abcde"), 2)
        fallbacks.append((start, end - 1, fallback))
        for event in batch:
            if event.user_id in held:
                expected.append((event.item_id in held[event.user_id], Served.PUBLISHED))
            else:
                expected.append((event.item_id in fallback, Served.FALLBACK))
        for user in {event.user_id: None for event in batch}:
            held[user] = rng.sample(list("abcde"), 2)
            last_offset = max(event.offset for event in batch if event.user_id == user)
            messages.append((user, last_offset, held[user]))
        start = end
    return inputs, messages, fallbacks, expected


@given(
    events=_EVENTS,
    batch_sizes=_BATCH_SIZES,
    seed=st.integers(0, 1_000),
)
def test_join_judges_users_without_a_message_by_the_fallback_of_their_batch(
    events: list[tuple[str, str]], batch_sizes: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    inputs, messages, fallbacks, expected = _simulate_pipeline_with_fallback(
        events, batch_sizes, rng
    )
    # Three streams read at their own pace (the fallbacks come from a consumer hook).
    join = PublishedRecommendationJoin(fallback=True)
    outcomes = []
    queues: list[list] = [list(inputs), list(messages), list(fallbacks)]
    while any(queues):
        source = rng.choice([number for number, queue in enumerate(queues) if queue])
        if source == 0:
            outcomes += join.add_event(queues[0].pop(0))
        elif source == 1:
            user, offset, items = queues[1].pop(0)
            outcomes += join.add_recommendation(user, 0, offset, items)
        else:
            first, last, items = queues[2].pop(0)
            outcomes += join.add_fallback(0, first, last, items)
    # Every event was decided as soon as it could be: nothing is left for finish.
    assert join.pending == 0
    assert join.finish() == []
    verdicts = {outcome.position: (outcome.hit, outcome.served) for outcome in outcomes}
    assert len(outcomes) == len(events)
    assert [verdicts[position] for position in range(len(events))] == expected


def test_join_without_fallback_counts_a_user_with_no_message_as_served_nothing() -> None:
    join = PublishedRecommendationJoin()
    join.add_event(InputEvent(0, "u1", "a", 0, 0))
    [outcome] = join.add_recommendation("u1", 0, 0, ["a"])
    assert (outcome.hit, outcome.served) == (False, Served.NOTHING)
    # A fallback given to a join that does not use it changes nothing.
    assert join.add_fallback(0, 0, 0, ["a"]) == []


def test_join_finish_uses_a_known_fallback_for_an_event_whose_batch_published_nothing() -> None:
    join = PublishedRecommendationJoin(fallback=True)
    join.add_fallback(0, 0, 1, ["a"])
    join.add_event(InputEvent(0, "u1", "a", 0, 0))  # its batch's message never comes
    join.add_event(InputEvent(1, "u2", "a", 0, 5))  # no fallback covers offset 5
    verdicts = sorted((o.user_id, o.hit, o.served) for o in join.finish())
    assert verdicts == [("u1", True, Served.FALLBACK), ("u2", False, Served.NOTHING)]


def test_join_counts_each_users_earlier_events() -> None:
    join = PublishedRecommendationJoin()
    for offset, user in enumerate(["u1", "u2", "u1", "u1"]):
        join.add_event(InputEvent(offset, user, "x", 0, offset))
    outcomes = join.finish()
    assert sorted((o.user_id, o.events_before) for o in outcomes) == [
        ("u1", 0), ("u1", 1), ("u1", 2), ("u2", 0),
    ]  # fmt: skip
    assert not any(outcome.hit for outcome in outcomes)
    assert join.pending == 0


def test_join_waits_for_the_batch_message_before_deciding() -> None:
    join = PublishedRecommendationJoin()
    assert join.add_recommendation("u1", 0, 3, ["a"]) == []
    # An event after the last message cannot be decided yet: an earlier-batch message for
    # the user may still be on its way.
    assert join.add_event(InputEvent(0, "u1", "a", 0, 7)) == []
    assert join.pending == 1
    [outcome] = join.add_recommendation("u1", 0, 7, ["b"])
    assert outcome.hit
    # A republished duplicate of an old message changes nothing already decided.
    assert join.add_recommendation("u1", 0, 3, ["a"]) == []


def test_board_by_event_count_and_windows() -> None:
    board = HitRateBoard("m", window=3)
    verdicts = [(0, True, 0), (1, False, 1), (2, False, 0), (3, True, 1), (4, True, 150)]
    for position, hit, before in verdicts:
        board.record(position, hit, before)

    assert board.events == 5
    assert board.hit_rate == pytest.approx(0.6)
    counts = board.by_event_count((0, 1, 3, 150))
    assert counts[0] == (0.5, 2)
    assert counts[1] == (0.5, 2)
    assert counts[3] == (None, 0)
    assert counts[150] == (1.0, 1)  # beyond the tracked range: the last bucket
    assert board.windows() == [(3, pytest.approx(1 / 3)), (6, 1.0)]
    assert board.to_dict()["by_events_before"]["0"] == {"hit_rate": 0.5, "events": 2}


def test_item_counts_decay_follows_recent_popularity() -> None:
    plain, decayed = ItemCounts(), ItemCounts(half_life_events=2)
    for item in ["old"] * 10 + ["new"] * 4:
        plain.add(item)
        decayed.add(item)
    assert plain.top(1, set()) == ["old"]
    assert decayed.top(1, set()) == ["new"]
    assert decayed.top(5, {"new"}) == ["old"]


def test_item_counts_survive_rescaling() -> None:
    counts = ItemCounts(half_life_events=0.5)  # the increment quadruples every event
    for number in range(2_000):
        counts.add(f"i{number % 3}")
    assert counts.top(3, set()) == ["i1", "i0", "i2"]


@pytest.mark.parametrize("model_name", ["BiasedMF", "FunkMF"])
def test_river_ranker_ranks_as_river_does(model_name: str) -> None:
    def model() -> object:
        latents = optim.initializers.Normal(mu=0.0, sigma=0.1, seed=3)
        if model_name == "BiasedMF":
            return reco.BiasedMF(n_factors=4, latent_initializer=latents, seed=3)
        return reco.FunkMF(n_factors=4, initializer=latents, seed=3)

    ranker = RiverRanker(model_name, model(), candidates=8)
    reference = model()
    rng = random.Random(1)
    for _ in range(300):
        user, item, weight = f"u{rng.randrange(5)}", f"i{rng.randrange(8)}", rng.uniform(-1, 1)
        ranker.learn(user, item, weight)
        reference.learn_one(user, item, weight)  # type: ignore[attr-defined]
    candidates = {f"i{number}" for number in range(8)}
    for user in ("u0", "u3"):
        expected = reference.rank(user, candidates)  # type: ignore[attr-defined]
        assert ranker.recommend(user, 8, set()) == expected


def test_river_ranker_only_ranks_popular_unseen_candidates() -> None:
    ranker = river_baselines(candidates=2)[0]
    for item in ["a", "a", "a", "b", "b", "c"]:
        ranker.learn("someone", item, 1.0)
    recommended = ranker.recommend("u", 5, seen={"a"})
    assert sorted(recommended) == ["b", "c"]


def test_popularity_replay_hits_the_popular_item() -> None:
    events = [(f"u{number}", "hit", 1.0) for number in range(10)] + [("u0", "other", 1.0)]
    boards = replay_baselines(events, [StreamingPopularity()], count=1, window=5)
    board = boards["popularity"]
    # The first event has nothing to go on, the other nine new users get "hit"; u0 already
    # has it, so "other" (never seen before) is a miss.
    assert board.events == 11
    assert board.hit_rate == pytest.approx(9 / 11)
    assert board.by_event_count((0, 1)) == {0: (0.9, 10), 1: (0.0, 1)}


@pytest.mark.parametrize("module", [prequential, streaming_baselines])
def test_examples_in_docstrings_hold(module: object) -> None:
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0
    assert outcome.failed == 0
