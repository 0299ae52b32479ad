"""Explained recommendations with the item neighbours and the decayed popularity on: each
item names the sources that put it there (the clusters' vote, the neighbours with the
user's recent items that named it, the popularity) with their share of its fused score,
and the published message names each item's lead source, and a lead cluster only for the
items the clusters' vote put there."""

from __future__ import annotations

import math

import msgspec
import pytest

from streamrec.config import ServingSettings
from streamrec.events import RecommendationMessage
from streamrec.model.explanations import ItemExplanation, explain
from streamrec.model.rank_fusion import FUSION_RANK_OFFSET, Source
from streamrec.model.stream import EfficientRecStream, UserRecommendations
from streamrec.wire.recommendations import decode_recommendation, encode_recommendation
from tests.fixtures.small_model import tiny_stream
from tests.unit.test_item_neighbours import accepted

WEIGHTS = {Source.CLUSTERS: 0.3, Source.NEIGHBOURS: 0.7, Source.POPULARITY: 0.3}
SOURCES_ON = ServingSettings(
    top_memberships=2,
    recommendations=6,
    shortlist_length=4,
    shortlist_refresh_seconds=0.0,
    neighbours=True,
    neighbour_weight=WEIGHTS[Source.NEIGHBOURS],
    popularity_weight=WEIGHTS[Source.POPULARITY],
)


def learned_stream(settings: ServingSettings) -> EfficientRecStream:
    """A crowd takes p0..p4 (the clusters' shortlists of 4 hold p0..p2 and "hit"), many take
    "hit" (the most popular), and a few fans take "seed", then "follow" and "hit": so
    "follow" is a neighbour of "seed" that neither the clusters nor the popularity name."""
    stream = tiny_stream(settings)
    pairs = [(f"crowd{user}", f"p{item}") for user in range(8) for item in range(5)]
    pairs += [(f"pop{user}", "hit") for user in range(30)]
    pairs += [(f"fan{user}", item) for user in range(3) for item in ["seed", "follow", "hit"]]
    stream.learn_many(
        [accepted(position, user, item) for position, (user, item) in enumerate(pairs)]
    )
    return stream


def explained(stream: EfficientRecStream, user_id: str) -> tuple[UserRecommendations, list]:
    [voted] = stream.vote_many([user_id], explain=True)
    shortlists = stream.state.shortlists([cluster for cluster, _ in voted.top_clusters])
    vote_weight = stream.settings.rerank_vote_weight if voted.known else None
    whys = explain(voted.items, voted.top_clusters, shortlists, vote_weight, voted.sources)
    return voted, whys


def by_item(whys: list[ItemExplanation]) -> dict[str, ItemExplanation]:
    return {why.item_id: why for why in whys}


def sources_of(why: ItemExplanation) -> set[Source]:
    return {part.source for part in why.sources}


@pytest.fixture(scope="module")
def newcomer() -> tuple[UserRecommendations, list[ItemExplanation], RecommendationMessage]:
    stream = learned_stream(SOURCES_ON)
    learned = stream.learn_many([accepted(900, "newcomer", "seed")])
    [published] = learned.recommendations
    message = RecommendationMessage(
        published.user_id,
        tuple(published.items),
        1,
        published.top_clusters,
        0.0,
        lead_clusters=published.lead_clusters,
        lead_sources=published.lead_sources,
    )
    voted, whys = explained(stream, "newcomer")
    # The explained vote is the published one.
    assert voted.items == published.items
    assert voted.lead_clusters == published.lead_clusters
    assert voted.lead_sources == published.lead_sources
    return voted, whys, message


def test_an_item_only_the_neighbours_named_names_them_and_the_recent_item(newcomer) -> None:
    voted, whys, _ = newcomer
    follow = by_item(whys)["follow"]
    [part] = follow.sources
    assert part.source is Source.NEIGHBOURS and part.share == pytest.approx(1.0)
    assert [(recent.item_id, recent.share) for recent in part.recent_items] == [("seed", 1.0)]
    # No cluster put it there: no vote, no lead cluster, no retrieval part.
    assert follow.clusters == () and follow.vote == 0.0 and follow.retrieval is None
    assert follow.lead is None
    row = [item.item_id for item in voted.items].index("follow")
    assert voted.lead_clusters[row] is None
    assert voted.lead_sources[row] == ("neighbours", 1.0)


def test_an_item_only_the_popularity_named_names_it(newcomer) -> None:
    _, whys, _ = newcomer
    popular_only = [why for why in whys if sources_of(why) == {Source.POPULARITY}]
    assert popular_only, [(why.item_id, sources_of(why)) for why in whys]
    for why in popular_only:
        [part] = why.sources
        assert part.share == pytest.approx(1.0) and part.recent_items == ()
        assert 0.0 < part.score <= 1.0  # relative to the most popular item's
        assert why.lead is None and why.retrieval is None


def test_an_item_of_several_sources_splits_its_score_among_them(newcomer) -> None:
    voted, whys, _ = newcomer
    hit = by_item(whys)["hit"]
    assert sources_of(hit) == {Source.CLUSTERS, Source.NEIGHBOURS, Source.POPULARITY}
    neighbours = hit.source(Source.NEIGHBOURS)
    assert neighbours is not None
    assert [(recent.item_id, recent.share) for recent in neighbours.recent_items] == [("seed", 1.0)]
    assert hit.lead is not None and hit.lead.cluster == voted.top_clusters[0][0]
    both = [why for why in whys if {Source.CLUSTERS, Source.NEIGHBOURS} <= sources_of(why)]
    assert both
    for why in whys:
        assert sum(part.share for part in why.sources) == pytest.approx(1.0)
        # Each share is its source's weight / (60 + rank) over the fused score.
        for part in why.sources:
            expected = WEIGHTS[part.source] / (FUSION_RANK_OFFSET + part.rank) / why.score
            assert part.share == pytest.approx(expected)
        shares = [part.share for part in why.sources]
        assert shares == sorted(shares, reverse=True)
        # The retrieval part is that of the vote's own score, never the fused score's.
        clusters = why.source(Source.CLUSTERS)
        if clusters is not None:
            assert why.retrieval is not None
            assert why.retrieval == pytest.approx(clusters.score - 0.5 * math.log(why.vote))


def test_the_message_names_the_lead_source_and_leaves_out_clusters_that_did_not_vote(
    newcomer,
) -> None:
    _, whys, message = newcomer
    items = msgspec.json.decode(encode_recommendation(message))["items"]
    for item, why in zip(items, whys, strict=True):
        lead = why.lead_source
        assert lead is not None
        assert (item["source"], item["source_share"]) == (lead.source.value, round(lead.share, 3))
        if why.lead is None:
            assert "cluster" not in item and "share" not in item
        else:
            assert (item["cluster"], item["share"]) == (why.lead.cluster, round(why.lead.share, 3))
    assert {item["source"] for item in items} == {"clusters", "neighbours", "popularity"}
    assert decode_recommendation(encode_recommendation(message)) == message


def test_the_popularity_fallback_names_popularity_and_no_cluster() -> None:
    settings = SOURCES_ON.model_copy(update={"popularity_fallback": True, "neighbours": False})
    stream = learned_stream(settings)
    voted, whys = explained(stream, "stranger")
    assert not voted.known and voted.items
    assert voted.lead_clusters == (None,) * len(voted.items)
    assert voted.lead_sources == (("popularity", 1.0),) * len(voted.items)
    assert all(sources_of(why) == {Source.POPULARITY} for why in whys)
    assert voted.fused is False  # the scores are the popularity's own


def test_with_the_sources_off_the_list_is_the_vote_and_the_message_unchanged() -> None:
    settings = SOURCES_ON.model_copy(update={"neighbours": False, "popularity_weight": 0.0})
    stream = learned_stream(settings)
    learned = stream.learn_many([accepted(900, "newcomer", "seed")])
    [published] = learned.recommendations
    # Nothing is added to the hot path's output: no lead sources, no sources.
    assert published.lead_sources == () and published.sources == () and not published.fused
    assert None not in published.lead_clusters
    voted, whys = explained(stream, "newcomer")
    assert voted.items == published.items
    for why in whys:
        [part] = why.sources
        assert part.source is Source.CLUSTERS and part.share == 1.0
        assert part.score == why.score
    message = RecommendationMessage(
        "newcomer",
        tuple(published.items),
        1,
        published.top_clusters,
        0.0,
        lead_clusters=published.lead_clusters,
    )
    assert b'"source"' not in encode_recommendation(message).split(b'"top_clusters"')[0]
