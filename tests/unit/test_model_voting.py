"""Shortlist weights, top-L shortlists and cluster voting."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.model.memberships import dense_top_memberships, top_memberships
from streamrec.model.shortlists import NO_ITEM, shortlist_weights
from streamrec.model.voting import vote_many
from tests.fixtures.cluster_statistics import ClusterStatistics
from tests.fixtures.reference_voting import Shortlists, recommend


def statistics_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Cluster 0: item 0 liked by one member, item 1 liked by many, item 2 disliked.
    liked = np.array([[0.5, 6.0, 0.0, 0.0], [0.0, 1.0, 3.0, 0.0]])
    rated = np.array([[0.5, 8.0, 2.0, 0.0], [0.0, 1.0, 3.0, 0.0]])
    weighted = np.array([[0.5, 5.0, -2.0, 0.0], [0.0, 1.0, 3.0, 0.0]])
    mass = np.array([10.0, 4.0])
    return liked, rated, weighted, mass


def test_the_papers_weighted_mean_ranks_a_single_members_favourite_first() -> None:
    weights = shortlist_weights(*statistics_arrays(), kind="weighted_mean")
    assert weights[0].argmax() == 0


@pytest.mark.parametrize("kind", ["share", "rated_share", "shrunk_mean"])
def test_count_aware_weights_rank_the_item_many_members_liked_first(kind: str) -> None:
    weights = shortlist_weights(*statistics_arrays(), kind=kind)  # type: ignore[arg-type]
    assert weights[0].argmax() == 1


def test_weights_are_finite_for_empty_clusters_and_unrated_items() -> None:
    zeros = np.zeros((2, 3))
    for kind in ("share", "rated_share", "weighted_mean", "shrunk_mean"):
        assert np.isfinite(shortlist_weights(zeros, zeros, zeros, np.zeros(2), kind)).all()


def test_shortlists_keep_only_items_the_cluster_has_raters_for_padded_to_length() -> None:
    liked, rated, weighted, mass = statistics_arrays()
    lists = Shortlists.from_weights(
        shortlist_weights(liked, rated, weighted, mass, "share"), rated, list("abcd"), length=4
    )
    assert lists.items[0].tolist() == [1, 0, 2, NO_ITEM]
    assert lists.items[1].tolist() == [2, 1, NO_ITEM, NO_ITEM]


def random_shortlists(
    seed: int, clusters: int = 8, items: int = 40, length: int = 10
) -> Shortlists:
    generator = np.random.default_rng(seed)
    statistics = ClusterStatistics(clusters, [f"i{number}" for number in range(items)])
    statistics.liked[:] = generator.random((clusters, items)) * (
        generator.random((clusters, items)) < 0.5
    )
    statistics.rated[:] = statistics.liked + generator.random((clusters, items)) * 0.1
    statistics.mass[:] = 5.0 + generator.random(clusters)
    return Shortlists.from_statistics(statistics, "share", length)


def test_one_users_vote_equals_the_batch_vote_and_never_returns_own_items() -> None:
    shortlists = random_shortlists(seed=1)
    generator = np.random.default_rng(2)
    memberships = generator.random((20, 8))
    top = dense_top_memberships(memberships, 3)
    exclude = generator.random((20, len(shortlists.item_ids))) < 0.2
    columns, scores = vote_many(shortlists.dense(), top, exclude, count=5)
    clusters, values = top_memberships(memberships, 3)
    for user in range(20):
        single = recommend(
            shortlists, clusters[user], values[user], np.flatnonzero(exclude[user]), count=5
        )
        expected = [
            (shortlists.item_ids[c], s)
            for c, s in zip(columns[user], scores[user], strict=True)
            if c >= 0
        ]
        assert [item.score for item in single] == pytest.approx([score for _, score in expected])
        assert not {item.item_id for item in single} & {
            shortlists.item_ids[c] for c in np.flatnonzero(exclude[user])
        }


def test_a_user_without_clusters_gets_the_global_shortlist() -> None:
    shortlists = random_shortlists(seed=3)
    items = recommend(shortlists, np.array([], int), np.array([]), np.array([], int), count=4)
    assert [item.item_id for item in items] == [
        shortlists.item_ids[column] for column in shortlists.global_items[:4]
    ]


def test_reranking_orders_the_same_candidates_by_the_retrieval_score() -> None:
    shortlists = random_shortlists(seed=4)
    generator = np.random.default_rng(5)
    targets = generator.normal(size=(len(shortlists.item_ids), 3))
    query = generator.normal(size=3)
    reranked_lists = shortlists.with_targets(targets)
    clusters, values = np.array([0, 1]), np.array([0.9, 0.4])
    voted = recommend(shortlists, clusters, values, np.array([], int), count=100)
    reranked = recommend(reranked_lists, clusters, values, np.array([], int), 100, query)
    assert {item.item_id for item in voted} == {item.item_id for item in reranked}
    scores = [item.score for item in reranked]
    assert scores == sorted(scores, reverse=True)
    first = reranked_lists.item_index[reranked[0].item_id]
    assert reranked[0].score == pytest.approx(float(targets[first] @ query))


def test_voting_reads_only_the_users_clusters_shortlists() -> None:
    # O(M L): the answer cannot depend on clusters the user is not in.
    shortlists = random_shortlists(seed=6)
    changed_weights = shortlists.weights.copy()
    changed_weights[5:] = 99.0
    changed = Shortlists(
        shortlists.items,
        changed_weights,
        shortlists.item_ids,
        shortlists.global_items,
        shortlists.global_weights,
    )
    clusters, values = np.array([0, 2]), np.array([0.7, 0.3])
    assert recommend(shortlists, clusters, values, np.array([], int), 10) == recommend(
        changed, clusters, values, np.array([], int), 10
    )
