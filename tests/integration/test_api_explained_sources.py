"""The read API against real PostgreSQL with the item neighbours and the decayed popularity
on: every item names the sources that put it there with their share of its fused score,
the neighbours with the user's recent items that named it; the list and its lead sources
are those the pipeline publishes; ``streamrec recommend --explain`` says the same, within
80 columns."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rich.console import Console

from streamrec.api import schemas
from streamrec.cli.display import whole_table_width
from streamrec.cli.recommend import explained_table
from streamrec.config import Settings
from streamrec.model.item_neighbours import recent_items
from streamrec.model.rank_fusion import FUSION_RANK_OFFSET
from streamrec.services.explaining import Explainer
from streamrec.services.recommending import current_recommendations
from streamrec.storage import create_database_engine
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.databases import PostgresqlSchemas
from tests.integration.api_support import (
    ServedState,
    api_client,
    assert_the_cli_explains_as_the_api,
    build_served_state,
)
from tests.integration.sources_support import NEIGHBOUR_HISTORY, with_sources_on

pytestmark = pytest.mark.postgres

TERMINAL_COLUMNS = 80


@pytest.fixture(scope="module")
def served(postgresql_server_url: str, postgresql_schemas: PostgresqlSchemas) -> ServedState:
    return with_sources_on(build_served_state(postgresql_server_url, postgresql_schemas))


@pytest.fixture(scope="module")
def client(served: ServedState) -> Iterator:
    with api_client(served.settings) as (client, _):
        yield client


def published_message(served: ServedState, user_id: str):
    engine = create_database_engine(served.url)
    try:
        with UnitOfWork(engine) as uow:
            message = current_recommendations(uow, user_id, served.settings.serving, time.time())
            stored = uow.interactions.for_users([user_id])[user_id]
            recent = recent_items(stored, NEIGHBOUR_HISTORY)
    finally:
        engine.dispose()
    assert message is not None
    return message, recent


def test_every_item_names_its_sources_and_their_shares(served: ServedState, client) -> None:
    serving = served.settings.serving
    weights = {
        "clusters": 1.0 - serving.neighbour_weight,
        "neighbours": serving.neighbour_weight,
        "popularity": serving.popularity_weight,
    }
    seen_sources: set[str] = set()
    neighbours_only = 0
    for user_id in served.users[:12]:
        response = client.get(f"/api/users/{user_id}/recommendations")
        assert response.status_code == 200
        body = response.json()
        schemas.Recommendations.model_validate(body)  # what OpenAPI at /docs describes
        assert body["score_scale"] == "fused"
        message, recent = published_message(served, user_id)
        assert [item["item_id"] for item in body["items"]] == [i.item_id for i in message.items]
        assert len(message.lead_sources) == len(message.items)
        for item, lead_cluster, lead_source in zip(
            body["items"], message.lead_clusters, message.lead_sources, strict=True
        ):
            sources = item["sources"]
            names = [source["source"] for source in sources]
            seen_sources.update(names)
            assert sum(source["share"] for source in sources) == pytest.approx(1.0)
            # The fused score is the sum of each source's weight / (60 + rank), on the
            # stated scale: at most the sum of the weights / 61.
            assert item["score"] == pytest.approx(
                sum(weights[s["source"]] / (FUSION_RANK_OFFSET + s["rank"]) for s in sources)
            )
            assert 0.0 < item["score"] <= sum(weights.values()) / (FUSION_RANK_OFFSET + 1)
            # The published message names the lead source, and a lead cluster only for an
            # item the clusters' vote put there.
            assert lead_source == (names[0], round(sources[0]["share"], 3))
            if "clusters" in names:
                assert lead_cluster is not None
                assert lead_cluster[0] == item["clusters"][0]["cluster"]
                assert item["retrieval"] is not None
            else:
                assert lead_cluster is None and item["retrieval"] is None
            for source in sources:
                if source["source"] != "neighbours":
                    assert source["recent_items"] == []
                    continue
                named = [recent_item["item_id"] for recent_item in source["recent_items"]]
                assert named and set(named) <= set(recent)
                assert sum(r["share"] for r in source["recent_items"]) == pytest.approx(1.0)
                assert all(
                    r["title"] == f"Film number {r['item_id']}" for r in source["recent_items"]
                )
            if names == ["neighbours"]:
                neighbours_only += 1
    assert seen_sources == {"clusters", "neighbours", "popularity"}
    assert neighbours_only > 0, "no item came from the neighbours alone"


def test_an_ad_hoc_history_names_its_items_as_the_recent_ones(served: ServedState, client) -> None:
    history = served.items[:3]
    response = client.post("/api/recommendations", json={"items": history})
    assert response.status_code == 200
    body = response.json()
    schemas.Recommendations.model_validate(body)
    named = {
        recent["item_id"]
        for item in body["items"]
        for source in item["sources"]
        if source["source"] == "neighbours"
        for recent in source["recent_items"]
    }
    assert named and named <= set(history)
    assert not {item["item_id"] for item in body["items"]} & set(history)


def test_the_cli_explains_the_same_sources_within_80_columns(served: ServedState, client) -> None:
    user_id = served.users[4]
    table = assert_the_cli_explains_as_the_api(served.settings, client, user_id)
    assert "neighbours" in table and "after" in table
    explained = explained_for(served.settings, user_id)
    terminal = Console(width=TERMINAL_COLUMNS, force_terminal=True)
    assert whole_table_width(explained_table(user_id, explained), terminal) <= TERMINAL_COLUMNS


def explained_for(settings: Settings, user_id: str):
    engine = create_database_engine(settings.effective_database_url)
    try:
        with UnitOfWork(engine) as uow:
            explained = Explainer(settings.serving).for_user(uow, user_id, time.time())
    finally:
        engine.dispose()
    assert explained is not None
    return explained
