"""Explained recommendations: the full explanation (model.explanations.explain) against the
numbers of the vote, and the compact lead clusters the consumer publishes against it."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streamrec.config import Settings
from streamrec.model.explanations import explain
from streamrec.model.recommending import (
    LEAD_SHARE_DECIMALS,
    Reranking,
    Shortlist,
    TopClusters,
    vote_for_users,
    vote_with_leads,
)
from streamrec.services.batch import SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.services.recommending import voted_for_user
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire.recommendations import decode_recommendation, encode_recommendation
from tests.fixtures.rating_streams import rating_stream
from tests.fixtures.small_model import register_model, small_model_settings


def random_votes(
    seed: int, users: int = 20
) -> tuple[dict[int, Shortlist], list[TopClusters], list[set[str]]]:
    chooser = random.Random(seed)
    items = [f"i{number}" for number in range(40)]
    shortlists = {
        cluster: [(item_id, chooser.uniform(0.01, 1.0)) for item_id in chooser.sample(items, size)]
        for cluster, size in [(0, 12), (1, 5), (2, 20), (3, 1), (4, 9)]
    }
    top_clusters = [
        tuple((cluster, chooser.uniform(0.05, 1.0)) for cluster in chooser.sample(range(6), 3))
        for _ in range(users)
    ]
    seen = [set(chooser.sample(items, chooser.randint(0, 10))) for _ in range(users)]
    return shortlists, top_clusters, seen


@pytest.mark.parametrize("seed", range(4))
def test_an_explanation_adds_up_to_the_vote_that_ranked_the_item(seed: int) -> None:
    shortlists, top_clusters, seen = random_votes(seed)
    votes = vote_for_users(top_clusters, shortlists, seen, count=6)
    for user, items in enumerate(votes):
        total_membership = sum(membership for _, membership in top_clusters[user])
        for why in explain(items, top_clusters[user], shortlists):
            # Without re-ranking the score is the vote, the sum of the contributions.
            assert why.vote == pytest.approx(why.score, rel=1e-12)
            assert sum(vote.contribution for vote in why.clusters) == pytest.approx(why.vote)
            assert sum(vote.share for vote in why.clusters) == pytest.approx(1.0)
            assert all(0.0 < vote.share <= 1.0 for vote in why.clusters)
            # The default-like weights are in [0, 1], so the support is too.
            assert 0.0 < why.support <= 1.0
            assert why.support == pytest.approx(why.vote / total_membership)
            # Largest contribution first; every listed cluster has the item on its list.
            contributions = [vote.contribution for vote in why.clusters]
            assert contributions == sorted(contributions, reverse=True)
            for vote in why.clusters:
                assert dict(shortlists[vote.cluster])[why.item_id] == vote.weight
            assert why.retrieval is None


@pytest.mark.parametrize("seed", range(4))
def test_the_published_lead_cluster_is_the_explanations_first(seed: int) -> None:
    shortlists, top_clusters, seen = random_votes(seed, users=30)
    votes, leads = vote_with_leads(top_clusters, shortlists, seen, count=6)
    assert votes == vote_for_users(top_clusters, shortlists, seen, count=6)
    for user, items in enumerate(votes):
        assert len(leads[user]) == len(items)
        for why, (cluster, share) in zip(
            explain(items, top_clusters[user], shortlists), leads[user], strict=True
        ):
            assert why.lead is not None
            assert cluster == why.lead.cluster
            assert share == round(why.lead.share, LEAD_SHARE_DECIMALS)


def test_negative_weights_keep_shares_on_the_zero_to_one_scale() -> None:
    # The mean shortlist weights can be negative: the shares are of the absolute parts.
    shortlists: dict[int, Shortlist] = {0: [("a", 0.9)], 1: [("a", -0.3)]}
    top_clusters = ((0, 1.0), (1, 1.0))
    votes, leads = vote_with_leads([top_clusters], shortlists, [set()], count=1)
    [why] = explain(votes[0], top_clusters, shortlists)
    assert why.vote == pytest.approx(0.6)
    assert [(vote.cluster, vote.share) for vote in why.clusters] == [
        (0, pytest.approx(0.75)),
        (1, pytest.approx(0.25)),
    ]
    assert leads == [((0, 0.75),)]


def test_a_re_ranked_score_splits_into_retrieval_and_the_vote() -> None:
    shortlists, top_clusters, seen = random_votes(7, users=5)
    item_ids = sorted({item_id for shortlist in shortlists.values() for item_id, _ in shortlist})
    targets = {item_id: np.random.default_rng(len(item_id)).normal(size=3) for item_id in item_ids}
    queries = np.random.default_rng(1).normal(size=(5, 3))
    reranking = Reranking(queries, lambda ids: {i: targets[i] for i in ids}, vote_weight=0.5)
    votes = vote_for_users(top_clusters, shortlists, seen, count=4, reranking=reranking)
    for user, items in enumerate(votes):
        for why in explain(items, top_clusters[user], shortlists, vote_weight=0.5):
            assert why.retrieval == pytest.approx(float(queries[user] @ targets[why.item_id]))
            assert why.retrieval + 0.5 * math.log(why.vote) == pytest.approx(why.score)


def test_a_consumer_batch_publishes_the_lead_clusters_it_serves() -> None:
    settings: Settings = small_model_settings()
    engine = create_memory_database()
    register_model(engine, settings)
    records = [
        SourceRecord("interactions", 0, offset, None, payload)
        for offset, payload in enumerate(rating_stream(200, seed=3))
    ]
    result = IngestService(settings, engine, clock=lambda: 5_000.0).apply(records)
    assert result.recommendations
    with UnitOfWork(engine) as uow:
        for message in result.recommendations:
            assert len(message.lead_clusters) == len(message.items)
            clusters = {cluster for cluster, _ in message.top_clusters}
            assert {cluster for cluster, _ in message.lead_clusters} <= clusters
            assert all(0.0 < share <= 1.0 for _, share in message.lead_clusters)
            # `streamrec recommend` and the API serve (and explain) the same from the state.
            served = voted_for_user(uow, message.user_id, settings.serving, now=0.0)
            assert served is not None
            assert [item.item_id for item in served.message.items] == [
                item.item_id for item in message.items
            ]
            assert [item.score for item in served.message.items] == pytest.approx(
                [item.score for item in message.items]
            )
            assert served.message.lead_clusters == message.lead_clusters
            decoded = decode_recommendation(encode_recommendation(message))
            assert decoded.lead_clusters == message.lead_clusters
