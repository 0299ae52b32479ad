"""The consumer's batch vote (streamrec.model.recommending) against a vote written out
one user and one shortlist entry at a time."""

from __future__ import annotations

import random

import pytest

from streamrec.model.recommending import (
    Shortlist,
    TopClusters,
    vote_for_users,
)


def one_users_vote(
    top_clusters: TopClusters, shortlists: dict[int, Shortlist], seen: set[str], count: int
) -> list[tuple[str, float]]:
    """score(j) = sum over the user's clusters c of p_uc * W_cj, unseen items, best first."""
    scores: dict[str, float] = {}
    for cluster, membership in top_clusters:
        for item_id, weight in shortlists.get(cluster, ()):
            if item_id not in seen:
                scores[item_id] = scores.get(item_id, 0.0) + membership * weight
    return sorted(scores.items(), key=lambda pair: -pair[1])[:count]


@pytest.mark.parametrize("seed", range(5))
def test_the_batch_vote_is_each_users_own_vote(seed: int) -> None:
    chooser = random.Random(seed)
    items = [f"i{number}" for number in range(60)]
    # Shortlists of different lengths sharing items; cluster 7 has none stored, so users in
    # it vote with their other clusters only.
    shortlists = {
        cluster: [(item_id, chooser.uniform(0.01, 1.0)) for item_id in chooser.sample(items, size)]
        for cluster, size in [(0, 12), (1, 5), (2, 20), (3, 1), (4, 9)]
    }
    users = 25
    top_clusters = [
        tuple((cluster, chooser.uniform(0.05, 1.0)) for cluster in chooser.sample(range(8), 3))
        for _ in range(users)
    ]
    # Some seen items are candidates (they must be dropped), some are in no shortlist.
    seen = [set(chooser.sample(items, chooser.randint(0, 15))) for _ in range(users)]

    votes = vote_for_users(top_clusters, shortlists, seen, count=6)

    for user in range(users):
        expected = one_users_vote(top_clusters[user], shortlists, seen[user], count=6)
        assert [item.item_id for item in votes[user]] == [item_id for item_id, _ in expected]
        assert [item.score for item in votes[user]] == pytest.approx(
            [score for _, score in expected], rel=1e-12
        )


def test_users_without_candidates_get_an_empty_list() -> None:
    shortlists: dict[int, Shortlist] = {0: [("a", 1.0)]}
    votes = vote_for_users([((0, 1.0),), ((5, 1.0),), ()], shortlists, [{"a"}, set(), set()], 3)
    assert votes == [[], [], []]
