"""The consumer's per-batch helpers, checked against recomputation from scratch."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.config import ModelSettings
from streamrec.model.contributions import UserContribution, batch_contribution_deltas
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.memberships import dense_top_memberships
from streamrec.model.serving import (
    WeightChange,
    apply_weight_changes,
    recommend_for,
    refresh_memberships,
)
from streamrec.model.shortlists import Shortlists
from streamrec.model.statistics import ClusterStatistics
from streamrec.state import UserProfile

TOP = 2
MODEL = EfficientRec.new(
    ModelSettings(
        hash_buckets=256, item_dim=8, profile_dim=8, hidden_dim=16, clusters=5, feature_buckets=64
    ),
    FeatureSchema(),
    seed=3,
)
ITEMS = [f"i{number}" for number in range(20)]
VECTORS = dict(zip(ITEMS, MODEL.item_vectors(ITEMS, {}), strict=True))


def stream(
    seed: int, events: int = 200
) -> tuple[dict[str, UserProfile], dict[str, dict[str, float]], ClusterStatistics]:
    """Consumer-style batches of 10 events: sums, memberships and statistic deltas."""
    generator = np.random.default_rng(seed)
    users: dict[str, UserProfile] = {}
    weights: dict[str, dict[str, float]] = {}
    statistics = ClusterStatistics(MODEL.clusters)
    for _ in range(events // 10):
        changes = []
        for _ in range(10):
            user_id = f"u{generator.integers(6)}"
            item_id = ITEMS[generator.integers(len(ITEMS))]
            users.setdefault(user_id, UserProfile.new(user_id, dimension=8))
            pending = {c.item_id: c.new_weight for c in changes if c.user_id == user_id}
            current = {**weights.get(user_id, {}), **pending}
            weight = float(generator.choice([-1.0, 0.0, 0.5, 1.0]))
            changes.append(WeightChange(user_id, item_id, current.get(item_id), weight))
        touched = sorted({change.user_id for change in changes})
        before = {
            user_id: UserContribution(users[user_id].top_clusters, dict(weights.get(user_id, {})))
            for user_id in touched
        }
        users = apply_weight_changes(MODEL, users, changes, VECTORS)
        for change in changes:
            weights.setdefault(change.user_id, {})[change.item_id] = change.new_weight
        for user in refresh_memberships(MODEL, [users[user_id] for user_id in touched], TOP, 1):
            users[user.user_id] = user
        statistics.apply(
            *batch_contribution_deltas(
                [
                    (
                        before[user_id],
                        UserContribution(users[user_id].top_clusters, dict(weights[user_id])),
                    )
                    for user_id in touched
                ]
            )
        )
    return users, weights, statistics


def test_a_streamed_batch_pipeline_equals_encoding_and_counting_from_scratch() -> None:
    users, weights, streamed = stream(seed=0)
    user_ids = sorted(users)
    histories = [(list(weights[u]), list(weights[u].values())) for u in user_ids]
    encoded = MODEL.encode_histories(histories, [None] * len(user_ids), {}, VECTORS)
    for row, user_id in enumerate(user_ids):
        np.testing.assert_allclose(users[user_id].profile, encoded.profiles[row], atol=1e-4)
    rebuilt = ClusterStatistics(MODEL.clusters)
    rows = [row for row, u in enumerate(user_ids) for _ in weights[u]]
    items = [item for u in user_ids for item in weights[u]]
    rebuilt.add_users(
        dense_top_memberships(encoded.memberships, TOP),
        np.array(rows),
        ITEMS,
        np.array([ITEMS.index(item) for item in items]),
        np.array([w for u in user_ids for w in weights[u].values()]),
    )
    order = [rebuilt.item_index[item] for item in streamed.item_ids]
    np.testing.assert_allclose(streamed.liked, rebuilt.liked[:, order], atol=1e-4)
    np.testing.assert_allclose(streamed.rated, rebuilt.rated[:, order], atol=1e-4)
    np.testing.assert_allclose(streamed.weighted, rebuilt.weighted[:, order], atol=1e-4)
    np.testing.assert_allclose(streamed.mass, rebuilt.mass, atol=1e-4)


def test_a_user_with_nothing_known_gets_no_clusters_and_demographics_alone_get_some() -> None:
    blind = UserProfile.new("blind", dimension=8)
    described = UserProfile.new("described", dimension=8, attributes={"age": "25"})
    refreshed = refresh_memberships(MODEL, [blind, described], TOP, model_version=4)
    assert refreshed[0].top_clusters == () and refreshed[0].profile is None
    assert len(refreshed[1].top_clusters) == TOP and refreshed[1].profile is not None
    assert all(user.model_version == 4 for user in refreshed)


def shortlists() -> Shortlists:
    statistics = ClusterStatistics(MODEL.clusters, ITEMS)
    statistics.liked[:] = np.random.default_rng(1).random(statistics.liked.shape)
    statistics.rated[:] = statistics.liked
    statistics.mass[:] = 1.0
    return Shortlists.from_statistics(statistics, "share", length=8)


def test_recommendations_never_repeat_the_users_items_and_fall_back_to_the_global_list() -> None:
    lists = shortlists()
    user = UserProfile.new("u", dimension=8, top_clusters=((0, 0.9), (3, 0.4)))
    own = [lists.item_ids[column] for column in lists.items[0, :3]]
    recommended = recommend_for(user, lists, own, count=5)
    assert len(recommended) == 5
    assert not {item.item_id for item in recommended} & set(own)
    blind = recommend_for(UserProfile.new("b", dimension=8), lists, [], count=3)
    assert [item.item_id for item in blind] == [lists.item_ids[c] for c in lists.global_items[:3]]


def test_reranking_with_the_model_uses_the_users_profile() -> None:
    lists = shortlists().with_targets(MODEL.item_targets(ITEMS, {}))
    users = apply_weight_changes(
        MODEL,
        {"u": UserProfile.new("u", dimension=8)},
        [WeightChange("u", "i1", None, 1.0)],
        VECTORS,
    )
    [user] = refresh_memberships(MODEL, [users["u"]], TOP)
    reranked = recommend_for(user, lists, ["i1"], count=4, model=MODEL)
    query = MODEL.retrieval_queries(user.profile[None])[0]
    expected = [float(lists.targets[lists.item_index[item.item_id]] @ query) for item in reranked]
    assert [item.score for item in reranked] == pytest.approx(expected)
