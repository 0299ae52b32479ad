"""Recency-weighted pooling: forward-decayed running sums equal a recomputation from the whole
set (events in any order, changed weights, batches), and no half-life is today's pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from streamrec.config import ModelSettings, ServingSettings, Settings, TrainingSettings
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.pooling import (
    RecencyPooledSums,
    apply_decayed_coefficient_changes,
    bag_recency_factors,
    decayed_pooled_sum,
    pool_bags,
    pooled_vectors,
    pooling_coefficients,
    recency_factors,
    set_recency_factors,
)
from streamrec.model.table_replay import EfficientRecRecommender
from streamrec.model.training.sampler import InMemoryUserSampler, UserBatch
from streamrec.model.training.trainer import train
from streamrec.model.user_states import RECOMPUTE_BELOW_WEIGHTED_COUNT

ITEMS = 8
DIMENSION = 4
VECTORS = np.random.default_rng(3).uniform(-1, 1, (ITEMS, DIMENSION))
WEIGHTS = st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0])
# (item, weight, timestamp): timestamps in any order, so late events are covered.
EVENTS = st.lists(
    st.tuples(st.integers(0, ITEMS - 1), WEIGHTS, st.integers(0, 40).map(float)),
    min_size=1,
    max_size=40,
)
HALF_LIVES = st.sampled_from([0.5, 1.0, 3.0, 20.0])
MODES = st.sampled_from(["preference", "shifted", "presence"])


def replay(
    events: list[tuple[int, float, float]], mode: str, half_life: float, batch_size: int
) -> tuple[RecencyPooledSums, dict[int, tuple[float, float]]]:
    """Stream the events into one user's forward-decayed state, ``batch_size`` per call.

    Returns the state and the interaction set (item -> (coefficient, timestamp)) it holds: the
    last event applied for each item replaces the earlier one."""
    state = RecencyPooledSums.empty(1, DIMENSION)
    current: dict[int, tuple[float, float]] = {}
    for start in range(0, len(events), batch_size):
        rows, vectors, olds, old_times, news, new_times = [], [], [], [], [], []
        for item, weight, timestamp in events[start : start + batch_size]:
            coefficient = float(pooling_coefficients(np.array([weight]), mode)[0])
            old, old_time = current.get(item, (0.0, 0.0))
            rows.append(0)
            vectors.append(VECTORS[item])
            olds.append(old)
            old_times.append(old_time)
            news.append(coefficient)
            new_times.append(timestamp)
            current[item] = (coefficient, timestamp)
        state = apply_decayed_coefficient_changes(
            state,
            np.array(rows),
            np.array(vectors),
            np.array(olds),
            np.array(old_times),
            np.array(news),
            np.array(new_times),
            half_life,
        )
    return state, current


def recomputed(
    current: dict[int, tuple[float, float]], reference: float, half_life: float
) -> tuple[np.ndarray, float]:
    items = sorted(current)
    return decayed_pooled_sum(
        VECTORS[items],
        np.array([current[item][0] for item in items]),
        np.array([current[item][1] for item in items]),
        reference,
        half_life,
    )


@settings(max_examples=150, deadline=None)
@given(events=EVENTS, mode=MODES, half_life=HALF_LIVES, batch_size=st.integers(1, 7))
def test_forward_decayed_sums_equal_a_recomputation_from_the_whole_set(
    events: list[tuple[int, float, float]], mode: str, half_life: float, batch_size: int
) -> None:
    state, current = replay(events, mode, half_life, batch_size)
    # The reference is the newest event time seen, whatever the arrival order.
    assert state.reference_times[0] == max(timestamp for _, _, timestamp in events)
    expected_sum, expected_count = recomputed(current, state.reference_times[0], half_life)
    np.testing.assert_allclose(state.sums[0], expected_sum, atol=1e-9)
    assert state.weighted_counts[0] == pytest.approx(expected_count, abs=1e-9)
    assert state.nonzero_counts[0] == sum(1 for coefficient, _ in current.values() if coefficient)
    # x_u does not depend on the reference: recompute relative to the newest non-zero term.
    nonzero_times = [timestamp for coefficient, timestamp in current.values() if coefficient]
    other_reference = max(nonzero_times) if nonzero_times else 0.0
    other_sum, other_count = recomputed(current, other_reference, half_life)
    # Rounding left by removed terms is ~1e-16 of their size: relative to n_u it grows when
    # only terms many half-lives older than the reference remain (see RecencyPooledSums).
    count = state.weighted_counts[0]
    if 0.0 < count < RECOMPUTE_BELOW_WEIGHTED_COUNT:
        # Only terms dozens of half-lives old remain: their factors underflow, so x_u is not
        # kept incrementally here; the user-state update pools such a row again from the
        # whole set (test_user_states_recency checks that path).
        return
    tolerance = 1e-5 + (min(1e-14 / count, 2.0) if count > 0 else 0.0)
    np.testing.assert_allclose(
        state.pooled(), pooled_vectors(other_sum[None], np.array([other_count])), atol=tolerance
    )


@settings(max_examples=60, deadline=None)
@given(events=EVENTS, mode=MODES, half_life=HALF_LIVES, seed=st.integers(0, 2**16))
def test_arrival_order_does_not_matter_for_distinct_items(
    events: list[tuple[int, float, float]], mode: str, half_life: float, seed: int
) -> None:
    # One event per item: any arrival order gives the same set, so the same x_u.
    distinct = list({item: (item, weight, time) for item, weight, time in events}.values())
    shuffled = [distinct[index] for index in np.random.default_rng(seed).permutation(len(distinct))]
    first = replay(distinct, mode, half_life, batch_size=1)
    second = replay(shuffled, mode, half_life, batch_size=3)
    np.testing.assert_allclose(first[0].sums, second[0].sums, atol=1e-9)
    np.testing.assert_allclose(first[0].weighted_counts, second[0].weighted_counts, atol=1e-9)


def test_float32_state_stays_close_over_a_long_stream() -> None:
    generator = np.random.default_rng(0)
    state = RecencyPooledSums.empty(1, DIMENSION, dtype=np.float32)
    current: dict[int, tuple[float, float]] = {}
    for step in range(2_000):
        item, coefficient = int(generator.integers(ITEMS)), float(generator.choice([0.0, 0.5, 1]))
        old, old_time = current.get(item, (0.0, 0.0))
        state = apply_decayed_coefficient_changes(
            state, np.array([0]), VECTORS[[item]], np.array([old]), np.array([old_time]),
            np.array([coefficient]), np.array([float(step)]), 50.0,
        )  # fmt: skip
        current[item] = (coefficient, float(step))
    assert state.sums.dtype == np.float32
    expected_sum, expected_count = recomputed(current, state.reference_times[0], 50.0)
    np.testing.assert_allclose(
        state.pooled(), pooled_vectors(expected_sum[None], np.array([expected_count])), atol=1e-4
    )


def test_a_set_emptied_by_changes_is_exactly_empty() -> None:
    vectors = VECTORS[:2]
    state = apply_decayed_coefficient_changes(
        RecencyPooledSums.empty(1, DIMENSION), np.array([0, 0]), vectors, np.zeros(2),
        np.zeros(2), np.array([0.3, 0.7]), np.array([1.0, 2.3]), 0.7,
    )  # fmt: skip
    state = apply_decayed_coefficient_changes(
        state, np.array([0, 0]), vectors, np.array([0.3, 0.7]), np.array([1.0, 2.3]),
        np.zeros(2), np.array([3.1, 3.9]), 0.7,
    )  # fmt: skip
    assert state.nonzero_counts.tolist() == [0]
    assert state.weighted_counts.tolist() == [0.0]
    assert state.pooled().tolist() == [[0.0] * DIMENSION]


def test_a_late_event_far_older_than_the_reference_still_counts() -> None:
    # The only term left is 30 half-lives older than the reference: tiny sums, same x.
    state, _ = replay([(0, -1.0, 15.0), (0, -1.0, 0.0)], "preference", 0.5, batch_size=1)
    np.testing.assert_allclose(state.pooled()[0], np.clip(-VECTORS[0], -1, 1), atol=1e-6)


def test_without_a_half_life_pooling_is_todays() -> None:
    sums = np.array([[3.0, -1.0], [0.5, 0.5], [1e-8, 0.0]], dtype=np.float32)
    counts = np.array([2, 1, 0])
    # The integer path is the formula used before recency weighting existed.
    expected = np.clip(sums / np.maximum(counts.astype(np.float32), 1.0)[:, None], -1.0, 1.0)
    assert np.array_equal(pooled_vectors(sums, counts), expected)
    assert recency_factors(np.array([1.0, 100.0]), 5.0, None).tolist() == [1.0, 1.0]
    vectors = torch.from_numpy(VECTORS.astype(np.float32))
    rows, bags = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1])
    coefficients = torch.tensor([1.0, 0.0, 0.5, -1.0])
    terms = coefficients[:, None] * vectors[rows]
    old_sums = torch.zeros(2, DIMENSION).index_add_(0, bags, terms)
    old_counts = torch.zeros(2).index_add_(0, bags, (coefficients != 0).float())
    old = torch.clamp(old_sums / old_counts.clamp(min=1.0)[:, None], -1.0, 1.0)
    assert torch.equal(pool_bags(vectors, rows, bags, coefficients, 2), old)


def test_pool_bags_with_factors_equals_the_decayed_recomputation() -> None:
    timestamps = np.array([0.0, 3.0, 1.0, 10.0, 7.0, 9.0])
    bags = np.array([0, 0, 0, 1, 1, 1])
    coefficients = np.array([1.0, 0.5, 0.25, 0.0, 1.0, 0.5], dtype=np.float32)
    rows = np.arange(6)
    factors = bag_recency_factors(timestamps, bags, coefficients, 2, 2.0)
    pooled = pool_bags(
        torch.from_numpy(VECTORS[:6].astype(np.float32)), torch.from_numpy(rows),
        torch.from_numpy(bags), torch.from_numpy(coefficients), 2,
        torch.from_numpy(factors.astype(np.float32)),
    )  # fmt: skip
    for bag, reference in ((0, 3.0), (1, 9.0)):  # newest non-zero row of each bag
        chosen = bags == bag
        total, count = decayed_pooled_sum(
            VECTORS[:6][chosen], coefficients[chosen], timestamps[chosen], reference, 2.0
        )
        expected = pooled_vectors(total[None], np.array([count]))
        np.testing.assert_allclose(pooled[bag].numpy(), expected[0], atol=1e-6)


def test_the_setting_is_optional_and_positive() -> None:
    assert ServingSettings().pooling_half_life_seconds is None
    assert ServingSettings(pooling_half_life_seconds=2).pooling_half_life_seconds == 2.0
    with pytest.raises(ValidationError):
        ServingSettings(pooling_half_life_seconds=0)
    environment = {"STREAMREC_SERVING__POOLING_HALF_LIFE_SECONDS": "86400"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        assert Settings().serving.pooling_half_life_seconds == 86400.0


def toy_table() -> InteractionTable:
    return InteractionTable.from_rows(
        (f"u{user}", f"i{(user * 7 + step) % 30}", 1.0, float(step), None)
        for user in range(40)
        for step in range(6)
    )


def fitted(half_life: float | None, train_with_recency: bool = False) -> EfficientRecRecommender:
    recommender = EfficientRecRecommender(
        ModelSettings(hash_buckets=256, clusters=4),
        ServingSettings(shortlist_length=10, pooling_half_life_seconds=half_life),
        TrainingSettings(users_per_step=16, steps=5),
        train_with_recency=train_with_recency,
    )
    recommender.fit(toy_table(), {}, {})
    return recommender


HISTORIES = [
    UserHistory("a", [("i3", 1.0), ("i9", 1.0), ("i4", 1.0)], timestamps=[0.0, 1.0, 2.0]),
    UserHistory("b", [("i20", 1.0), ("i1", 1.0)], timestamps=[5.0, 3.0]),
]


def test_a_half_life_far_longer_than_the_data_recommends_as_none_does() -> None:
    # Every factor is 1.0 to float precision: only the order of float operations differs.
    none, long = fitted(None), fitted(1e15, train_with_recency=True)
    for cluster, items in none.state.statistics.items():
        for item_id, totals in items.items():
            np.testing.assert_allclose(totals, long.state.statistics[cluster][item_id], rtol=1e-5)
    assert none.state.masses == pytest.approx(long.state.masses, rel=1e-5)
    assert none.recommend_many(HISTORIES, n=5) == long.recommend_many(HISTORIES, n=5)


def test_offline_recency_needs_timestamps_and_can_be_set_after_fit() -> None:
    recommender = fitted(None, train_with_recency=False)
    before = recommender.recommend_many(HISTORIES, n=5)
    recommender.reconfigure(pooling_half_life_seconds=1.0)
    with pytest.raises(ValueError, match="timestamp"):
        recommender.recommend_many([UserHistory("c", [("i3", 1.0)])], n=5)
    assert len(recommender.recommend_many(HISTORIES, n=5)[0]) == 5
    recommender.reconfigure(pooling_half_life_seconds=None)
    assert recommender.recommend_many(HISTORIES, n=5) == before


def test_training_with_recency_needs_a_sampler_with_timestamps() -> None:
    sampler = InMemoryUserSampler(toy_table())
    batch = sampler(4, np.random.default_rng(0))
    assert batch.timestamps is not None and len(batch.timestamps) == len(batch.weights)
    no_times = UserBatch(
        batch.items, batch.item_rows, batch.weights, batch.offsets, batch.attributes
    )
    model = EfficientRec.new(ModelSettings(hash_buckets=256, clusters=4), FeatureSchema())
    with pytest.raises(ValueError, match="timestamps"):
        train(
            model, lambda users, generator: no_times, {}, TrainingSettings(users_per_step=4),
            steps=1, pooling_half_life_seconds=1.0,
        )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(events=EVENTS, mode=MODES, half_life=HALF_LIVES)
def test_one_sets_factors_are_those_of_a_single_bag(
    events: list[tuple[int, float, float]], mode: str, half_life: float
) -> None:
    timestamps = np.array([timestamp for _, _, timestamp in events])
    coefficients = pooling_coefficients(np.array([weight for _, weight, _ in events]), mode)
    single = set_recency_factors(timestamps, coefficients, half_life)
    bags = bag_recency_factors(
        timestamps, np.zeros(len(events), np.int64), coefficients, 1, half_life
    )
    assert np.array_equal(single, bags)
    if coefficients.any():
        assert single[coefficients != 0].max() == 1.0
