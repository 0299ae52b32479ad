"""The stream fed from a table: fit on training users, recommend for cold users by cluster
voting, through the same EfficientRecStream the consumer drives."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.config import ModelSettings, ServingSettings, TrainingSettings
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.recommending import global_top_clusters, vote
from streamrec.model.table_replay import EfficientRecRecommender

GROUPS = 4
ITEMS_PER_GROUP = 15


def planted_table(users: int = 200) -> InteractionTable:
    generator = np.random.default_rng(0)
    rows = []
    for user in range(users):
        group = user % GROUPS
        for step, item in enumerate(generator.choice(ITEMS_PER_GROUP, size=8, replace=False)):
            rows.append((f"u{user}", f"g{group}-i{item}", 1.0, float(step), None))
    return InteractionTable.from_rows(rows)


@pytest.fixture(scope="module")
def recommender() -> EfficientRecRecommender:
    recommender = EfficientRecRecommender(
        ModelSettings(
            hash_buckets=512,
            item_dim=16,
            profile_dim=16,
            hidden_dim=32,
            clusters=4,
            feature_buckets=64,
            cluster_head="centroid",
        ),
        ServingSettings(top_memberships=2, shortlist_length=20),
        TrainingSettings(users_per_step=64, steps=150, learning_rate=1e-2),
    )
    recommender.fit(planted_table(), {}, {"u1": {"age": "25"}})
    return recommender


def cold_histories() -> list[UserHistory]:
    return [
        UserHistory(f"cold{group}", [(f"g{group}-i{item}", 1.0) for item in range(3)])
        for group in range(GROUPS)
    ]


def test_cold_users_get_items_of_their_own_group_and_never_their_history(
    recommender: EfficientRecRecommender,
) -> None:
    histories = cold_histories()
    recommendations = recommender.recommend_many(histories, n=5)
    for group, (history, items) in enumerate(zip(histories, recommendations, strict=True)):
        assert len(items) == 5
        assert not set(items) & {item for item, _ in history.interactions}
        own_group = sum(item.startswith(f"g{group}-") for item in items)
        # Popularity or chance would give about a quarter.
        assert own_group >= 4


def test_a_user_with_nothing_gets_the_global_shortlist_and_demographics_get_votes(
    recommender: EfficientRecRecommender,
) -> None:
    blind, described = recommender.recommend_many(
        [UserHistory("nobody", []), UserHistory("someone", [], {"age": "25"})], n=3
    )
    state = recommender.state
    heaviest = global_top_clusters(state.cluster_masses(), count=2)
    shortlists = state.shortlists([cluster for cluster, _ in heaviest])
    assert blind == [item.item_id for item in vote(heaviest, shortlists, (), 3)]
    assert len(described) == 3


def test_a_history_of_items_never_seen_in_training_still_gets_a_full_list(
    recommender: EfficientRecRecommender,
) -> None:
    # Hashed ids give any item a vector, so such a user is encoded and voted for as usual.
    unknown = [("never-seen-1", 1.0), ("never-seen-2", 0.5)]
    (items,) = recommender.recommend_many([UserHistory("stranger", unknown)], n=5)
    assert len(items) == 5
    assert not set(items) & {"never-seen-1", "never-seen-2"}


def test_shortlist_length_and_memberships_change_without_retraining(
    recommender: EfficientRecRecommender,
) -> None:
    model = recommender.model
    recommender.reconfigure(shortlist_length=2, top_memberships=1)
    try:
        assert recommender.model is model
        shortlists = recommender.state.shortlist_by_cluster.values()
        assert all(len(items) <= 2 for items in shortlists)
        # One cluster's two items are too few: each list is filled from the other clusters'
        # shortlists (model.short_lists), and holds nothing else.
        held = {item for shortlist in shortlists for item, _ in shortlist}
        histories = cold_histories()
        lists = recommender.recommend_many(histories, n=5)
        for history, items in zip(histories, lists, strict=True):
            unseen = held - {item for item, _ in history.interactions}
            assert set(items) <= unseen
            assert len(items) == min(5, len(unseen))
    finally:
        recommender.reconfigure(shortlist_length=20, top_memberships=2)


def test_reranking_returns_candidates_of_the_users_clusters(
    recommender: EfficientRecRecommender,
) -> None:
    voted = recommender.recommend_many(cold_histories(), n=60)
    recommender.reconfigure(rerank=True)
    try:
        reranked = recommender.recommend_many(cold_histories(), n=60)
    finally:
        recommender.reconfigure(rerank=False)
    assert [set(items) for items in reranked] == [set(items) for items in voted]


def test_reconfigure_before_fit_is_an_error() -> None:
    fresh = EfficientRecRecommender(ModelSettings(), ServingSettings(), TrainingSettings())
    with pytest.raises(RuntimeError, match="fit"):
        fresh.reconfigure(shortlist_length=3)


def test_the_parameter_count_is_reported(recommender: EfficientRecRecommender) -> None:
    assert recommender.parameter_count() == recommender.model.parameter_count() > 0  # type: ignore[union-attr]
