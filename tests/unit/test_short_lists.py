"""A user who has interacted with most of their clusters' candidates still gets N items: the
list is filled from the shortlists of every cluster (``streamrec.model.short_lists``), through
the stream, whatever adapter holds the state."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.config import ServingSettings
from streamrec.model.memory_state import InMemoryStreamState
from streamrec.model.stream import EfficientRecStream
from streamrec.state import Interaction, UserProfile
from tests.fixtures.small_model import TINY_MODEL, tiny_stream

# Cluster 0 holds two items, cluster 1 three; cluster 1 weighs three times as much.
SHORTLISTS = {
    0: [("a", 0.9), ("b", 0.8)],
    1: [("c", 0.7), ("d", 0.6), ("e", 0.5)],
}
MASSES = {0: 1.0, 1: 3.0}


def stream_with(user_clusters: tuple[tuple[int, float], ...], seen: list[str], **serving: object):
    stream: EfficientRecStream = tiny_stream(ServingSettings(top_memberships=1, **serving))
    state = stream.state
    assert isinstance(state, InMemoryStreamState)
    state.masses.update(MASSES)
    state.store_shortlists(SHORTLISTS)
    state.store_interactions(
        [Interaction("heavy", item, 1.0, f"e-{item}", "like", 1.0) for item in seen]
    )
    profile = np.linspace(-1.0, 1.0, TINY_MODEL.profile_dim).astype(np.float32)
    state.store_profiles(
        [
            UserProfile(
                "heavy",
                np.zeros(TINY_MODEL.item_dim, dtype=np.float32),
                nonzero_count=len(seen),
                interaction_count=len(seen),
                profile=profile,
                top_clusters=user_clusters,
                model_version=1,
            )
        ]
    )
    return stream


def test_a_short_list_is_filled_from_every_cluster_by_popularity() -> None:
    # Cluster 0 has one item left for the user (b); the vote of every cluster, each by its
    # share of the mass, fills the rest: c 0.75 * 0.7, d 0.75 * 0.6, e 0.75 * 0.5.
    stream = stream_with(((0, 1.0),), seen=["a"], recommendations=4, rerank=False)

    items = stream.recommend_one("heavy")

    assert [(item.item_id, round(item.score, 3)) for item in items] == [
        ("b", 0.8),
        ("c", 0.525),
        ("d", 0.45),
        ("e", 0.375),
    ]


def test_a_filled_re_ranked_list_keeps_the_users_own_items_and_one_order() -> None:
    stream = stream_with(((0, 1.0),), seen=["a"], recommendations=4)

    items = stream.recommend_one("heavy")

    ids = [item.item_id for item in items]
    assert sorted(ids) == ["b", "c", "d", "e"]
    scores = [item.score for item in items]
    assert scores == sorted(scores, reverse=True)


def test_a_list_is_as_long_as_the_unseen_items_every_shortlist_holds() -> None:
    stream = stream_with(((0, 1.0),), seen=["a", "c", "d"], recommendations=4, rerank=False)

    assert [item.item_id for item in stream.recommend_one("heavy")] == ["b", "e"]


def test_a_full_list_is_the_vote_alone() -> None:
    stream = stream_with(((1, 1.0),), seen=["a"], recommendations=3, rerank=False)

    assert [item.item_id for item in stream.recommend_one("heavy")] == ["c", "d", "e"]


@pytest.mark.parametrize("rerank", [False, True])
def test_the_published_lead_clusters_name_one_cluster_per_item(rerank: bool) -> None:
    stream = stream_with(((0, 1.0),), seen=["a"], recommendations=4, rerank=rerank)

    [voted] = stream.vote_many(["heavy"])

    assert len(voted.lead_clusters) == len(voted.items) == 4
    leads = dict(zip((item.item_id for item in voted.items), voted.lead_clusters, strict=True))
    # b is the user's own cluster's; the filling items are cluster 1's, its whole vote.
    assert leads["b"] == (0, 1.0)
    assert {leads[item] for item in "cde"} == {(1, 1.0)}
