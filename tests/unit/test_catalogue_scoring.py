"""Full-catalogue scoring: exact top items by retrieval score, and the evaluated
recommender's catalogue path."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.config import ModelSettings, ServingSettings, TrainingSettings
from streamrec.model import catalogue_scoring
from streamrec.model.catalogue_scoring import CatalogueTargets, top_by_retrieval
from streamrec.model.history import UserHistory
from streamrec.model.history_profiles import history_profiles
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.shortlists import NO_ITEM
from streamrec.model.stream import events_of_histories
from streamrec.model.table_replay import EfficientRecRecommender


def brute_force(query: np.ndarray, targets: np.ndarray, excluded: set[int], count: int) -> list:
    scores = targets @ query
    order = sorted(
        (column for column in range(len(scores)) if column not in excluded),
        key=lambda column: (-scores[column], column),
    )
    return order[:count]


def test_the_top_items_are_those_of_a_full_sort_without_the_excluded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generator = np.random.default_rng(4)
    targets = generator.normal(size=(50, 6)).astype(np.float32)
    queries = generator.normal(size=(7, 6)).astype(np.float32)
    exclude = [set(generator.choice(50, size=row, replace=False).tolist()) for row in range(7)]
    # Blocks of 3 users: the result must not depend on how the users are cut.
    monkeypatch.setattr(catalogue_scoring, "USERS_PER_BLOCK", 3)
    columns, scores = top_by_retrieval(queries, targets, exclude, count=10)
    for row in range(7):
        assert columns[row].tolist() == brute_force(queries[row], targets, exclude[row], 10)
        np.testing.assert_allclose(scores[row], targets[columns[row]] @ queries[row], rtol=1e-5)


def test_fewer_items_than_asked_are_padded_with_no_item() -> None:
    targets = np.eye(3, dtype=np.float32)
    columns, scores = top_by_retrieval(np.ones((1, 3), np.float32), targets, [{0, 1}], count=4)
    assert columns.tolist() == [[2, NO_ITEM, NO_ITEM, NO_ITEM]]
    assert scores.tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_catalogue_targets_need_one_row_per_item() -> None:
    with pytest.raises(ValueError, match="targets"):
        CatalogueTargets(["a", "b"], np.zeros((3, 2), np.float32))


def planted_table(users: int = 120) -> InteractionTable:
    generator = np.random.default_rng(0)
    rows = []
    for user in range(users):
        group = user % 3
        for step, item in enumerate(generator.choice(15, size=6, replace=False)):
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
        ),
        ServingSettings(top_memberships=2, shortlist_length=5),
        TrainingSettings(users_per_step=32, steps=40),
        candidates="catalogue",
    )
    recommender.fit(planted_table(), {}, {})
    return recommender


def test_the_catalogue_path_ranks_every_training_item_by_retrieval_score(
    recommender: EfficientRecRecommender,
) -> None:
    history = UserHistory("cold", [("g0-i1", 1.0), ("g0-i2", 0.5)])
    [ranked] = recommender.recommend_many([history], n=100)
    # Every training item but the history's: beyond the 2 x 5 shortlisted candidates.
    assert len(ranked) == 45 - 2
    stream = recommender.stream
    assert stream is not None and stream.serving is not None
    [profile] = history_profiles(stream.serving, [history], recommender.serving_settings, dict)
    query = stream.serving.model.retrieval_queries(profile[None, :])[0]
    targets = stream.serving.model.item_targets(ranked, {})
    assert np.all(np.diff(targets @ query) <= 1e-6)


def test_a_history_profile_is_the_profile_the_stream_stores_for_those_events(
    recommender: EfficientRecRecommender,
) -> None:
    history = UserHistory("someone", [("g1-i3", 1.0), ("g1-i4", -0.5), ("g1-i3", 0.5)])
    stream = recommender.stream
    assert stream is not None and stream.serving is not None
    [profile] = history_profiles(stream.serving, [history], recommender.serving_settings, dict)
    stream.record(stream.learn_many(events_of_histories([history])))
    stored = recommender.state.profiles["someone"].profile
    np.testing.assert_allclose(profile, stored, rtol=1e-5, atol=1e-6)


def test_an_empty_history_gets_the_streams_global_answer(
    recommender: EfficientRecRecommender,
) -> None:
    empty = UserHistory("nobody", [])
    [from_catalogue] = recommender.recommend_many([empty], n=3)
    recommender.candidates = "shortlists"
    try:
        [from_shortlists] = recommender.recommend_many([empty], n=3)
    finally:
        recommender.candidates = "catalogue"
    assert from_catalogue == from_shortlists and len(from_catalogue) == 3


def test_an_unknown_candidate_source_is_refused() -> None:
    with pytest.raises(ValueError, match="candidates"):
        EfficientRecRecommender(
            ModelSettings(),
            ServingSettings(),
            TrainingSettings(),
            candidates="everything",  # type: ignore[arg-type]
        )
