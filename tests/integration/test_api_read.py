"""The read API of ``streamrec serve`` against real PostgreSQL: explained recommendations that
are the pipeline's own, ad-hoc histories, the catalogue, clusters, registry, dead letters,
the pipeline's status, and the read token."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from streamrec.services.recommending import current_recommendations
from streamrec.storage import create_database_engine
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.databases import PostgresqlSchemas
from tests.integration.api_support import (
    CONSUMER_GROUP,
    OPERATOR_TOKEN,
    READ_TOKEN,
    STORED_OFFSETS,
    ServedState,
    api_client,
    api_settings,
    assert_the_cli_explains_as_the_api,
    build_served_state,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def served(postgresql_server_url: str, postgresql_schemas: PostgresqlSchemas) -> ServedState:
    return build_served_state(postgresql_server_url, postgresql_schemas)


@pytest.fixture(scope="module")
def client(served: ServedState) -> Iterator:
    with api_client(served.settings) as (client, _):
        yield client


def stored_history(served: ServedState, user_id: str) -> list[tuple[str, float]]:
    engine = create_database_engine(served.url)
    try:
        with UnitOfWork(engine) as uow:
            rows = uow.interactions.for_users([user_id])[user_id]
    finally:
        engine.dispose()
    return [(row.item_id, row.weight) for row in rows]


def test_a_users_recommendations_are_the_pipelines_with_their_explanation(
    served: ServedState, client
) -> None:
    user_id = served.users[3]
    response = client.get(f"/api/users/{user_id}/recommendations")
    assert response.status_code == 200
    body = response.json()
    engine = create_database_engine(served.url)
    try:
        with UnitOfWork(engine) as uow:
            message = current_recommendations(uow, user_id, served.settings.serving, time.time())
    finally:
        engine.dispose()
    assert message is not None
    assert body["user_id"] == user_id and body["known_user"] is True
    assert body["model_version"] == served.versions[-1]
    assert [item["item_id"] for item in body["items"]] == [i.item_id for i in message.items]
    assert [item["score"] for item in body["items"]] == pytest.approx(
        [i.score for i in message.items]
    )
    memberships = {entry["cluster"] for entry in body["top_clusters"]}
    assert len(body["items"]) == served.settings.serving.recommendations
    for rank, (item, (lead, lead_share)) in enumerate(
        zip(body["items"], message.lead_clusters, strict=True), start=1
    ):
        assert item["rank"] == rank
        assert item["title"] == f"Film number {item['item_id']}"
        shares = [vote["share"] for vote in item["clusters"]]
        assert sum(shares) == pytest.approx(1.0)
        assert {vote["cluster"] for vote in item["clusters"]} <= memberships
        # The default rated_share weights keep the support on the 0-1 scale.
        assert 0.0 < item["support"] <= 1.0
        assert sum(v["contribution"] for v in item["clusters"]) == pytest.approx(item["vote"])
        # The published compact form names the explanation's lead cluster.
        assert (item["clusters"][0]["cluster"], round(shares[0], 3)) == (lead, lead_share)
        if served.settings.serving.rerank:
            assert item["retrieval"] is not None
        # The sources off (the default): the vote is the list, its only source.
        only_the_vote = {"source": "clusters", "share": 1.0, "rank": rank, "score": item["score"]}
        assert item["sources"] == [{**only_the_vote, "recent_items": []}]
    assert body["score_scale"] == ("reranked" if served.settings.serving.rerank else "vote")
    assert not message.lead_sources
    seen = {item_id for item_id, _ in stored_history(served, user_id)}
    assert not seen & {item["item_id"] for item in body["items"]}


def test_the_cli_explains_the_same_list(served: ServedState, client) -> None:
    table = assert_the_cli_explains_as_the_api(served.settings, client, served.users[5])
    assert "support" in table


def test_an_unknown_user_gets_the_global_shortlist_explained(client) -> None:
    body = client.get("/api/users/nobody-at-all/recommendations").json()
    assert body["known_user"] is False
    assert body["items"]
    assert all(item["clusters"] for item in body["items"])


def test_an_ad_hoc_history_is_served_as_the_same_stored_history(
    served: ServedState, client
) -> None:
    user_id = served.users[7]
    history = stored_history(served, user_id)
    stored = client.get(f"/api/users/{user_id}/recommendations").json()
    response = client.post(
        "/api/recommendations",
        json={"items": [{"item_id": item_id, "weight": weight} for item_id, weight in history]},
    )
    assert response.status_code == 200
    ad_hoc = response.json()
    assert ad_hoc["user_id"] is None and ad_hoc["known_user"] is True
    assert [m["cluster"] for m in ad_hoc["top_clusters"]] == [
        m["cluster"] for m in stored["top_clusters"]
    ]
    assert [item["item_id"] for item in ad_hoc["items"]] == [
        item["item_id"] for item in stored["items"]
    ]
    assert [item["score"] for item in ad_hoc["items"]] == pytest.approx(
        [item["score"] for item in stored["items"]], rel=1e-4
    )
    # Nothing was stored.
    engine = create_database_engine(served.url)
    try:
        with UnitOfWork(engine) as uow:
            assert not uow.users.get_many([""], served.versions[-1])
    finally:
        engine.dispose()


def test_ad_hoc_histories_take_plain_ids_and_refuse_bad_weights(
    served: ServedState, client
) -> None:
    plain = client.post("/api/recommendations", json={"items": served.items[:3]})
    assert plain.status_code == 200
    assert not set(served.items[:3]) & {item["item_id"] for item in plain.json()["items"]}
    empty = client.post("/api/recommendations", json={"items": []}).json()
    assert empty["known_user"] is False and empty["items"]
    bad = client.post("/api/recommendations", json={"items": [{"item_id": "1", "weight": 3}]})
    assert bad.status_code == 422


def test_a_users_history_and_memberships(served: ServedState, client) -> None:
    user_id = served.users[0]
    body = client.get(f"/api/users/{user_id}").json()
    assert {row["item_id"] for row in body["history"]} == {
        item_id for item_id, _ in stored_history(served, user_id)
    }
    timestamps = [row["timestamp"] for row in body["history"]]
    assert timestamps == sorted(timestamps, reverse=True)
    assert len(body["top_clusters"]) == served.settings.serving.top_memberships
    assert client.get("/api/users/nobody-at-all").status_code == 404


def test_items_are_paged_searched_and_placed_on_shortlists(served: ServedState, client) -> None:
    first = client.get("/api/items", params={"limit": 10}).json()
    assert [item["item_id"] for item in first["items"]] == sorted(served.items)[:10]
    second = client.get("/api/items", params={"limit": 10, "after": first["next_after"]}).json()
    assert [item["item_id"] for item in second["items"]] == sorted(served.items)[10:20]
    wanted = served.items[4]
    found = client.get("/api/items", params={"q": f"NUMBER {wanted}"}).json()["items"]
    assert wanted in {item["item_id"] for item in found}
    clusters = client.get("/api/clusters", params={"top": 1}).json()["clusters"]
    leader = clusters[0]["top_items"][0]["item_id"]
    detail = client.get(f"/api/items/{leader}").json()
    assert detail["item"]["categorical"] == {"genres": ["drama"]}
    assert any(
        (place["cluster"], place["rank"]) == (clusters[0]["cluster"], 1)
        for place in detail["shortlists"]
    )
    assert client.get("/api/items/no-such-item").status_code == 404


def test_clusters_with_their_shortlists(served: ServedState, client) -> None:
    body = client.get("/api/clusters").json()
    assert body["model_version"] == served.versions[-1]
    masses = [cluster["mass"] for cluster in body["clusters"]]
    assert masses == sorted(masses, reverse=True)
    assert sum(cluster["share"] for cluster in body["clusters"]) == pytest.approx(1.0)
    heaviest = body["clusters"][0]
    detail = client.get(f"/api/clusters/{heaviest['cluster']}").json()
    assert len(detail["shortlist"]) == detail["shortlist_length"] > 0
    weights = [entry["weight"] for entry in detail["shortlist"]]
    assert weights == sorted(weights, reverse=True)
    assert detail["most_rated"] and detail["most_rated"][0]["title"].startswith("Film number")
    assert client.get("/api/clusters/9999").status_code == 404


def test_the_registry_runs_and_dead_letters(served: ServedState, client) -> None:
    models = client.get("/api/models").json()
    assert [(m["version"], m["status"]) for m in models] == [(served.versions[-1], "active")]
    assert client.get(f"/api/models/{served.versions[-1]}").json()["status"] == "active"
    assert client.get("/api/models/9999").status_code == 404
    assert client.get("/api/training-runs").json() == []
    letters = client.get("/api/dead-letters").json()
    assert {letter["reason"] for letter in letters} == {
        "invalid_json",
        "unsupported_schema_version",
    }
    only = client.get("/api/dead-letters", params={"reason": "invalid_json"}).json()
    assert [(one["payload_preview"], one["source_offset"]) for one in only] == [("{not json", 7)]


def test_the_status_without_a_broker_shows_the_database_side(served: ServedState, client) -> None:
    body = client.get("/api/status").json()
    assert body["consumer_group"] == CONSUMER_GROUP
    assert body["active_model_version"] == served.versions[-1]
    assert body["broker_error"]
    assert {(p["partition"], p["stored_offset"]) for p in body["partitions"]} == set(
        STORED_OFFSETS.items()
    )
    assert all(p["lag"] is None for p in body["partitions"])
    assert body["dead_letters_by_reason"] == {"invalid_json": 1, "unsupported_schema_version": 1}
    assert body["last_batch_at"] is not None
    assert body["users_with_state"] == len(served.users)
    # Nothing moved since the first read: the second one measures no throughput.
    assert client.get("/api/status").json()["records_per_second"] == 0.0


def test_a_read_token_closes_the_api_to_anyone_without_a_token(served: ServedState) -> None:
    settings = api_settings(served.url, read_token=READ_TOKEN, operator_token=OPERATOR_TOKEN)
    with api_client(settings) as (client, _):
        assert client.get("/api/models").status_code == 401
        wrong = {"Authorization": "Bearer not-the-token-at-all"}
        assert client.get("/api/models", headers=wrong).status_code == 401
        for token in (READ_TOKEN, OPERATOR_TOKEN):
            headers = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/models", headers=headers).status_code == 200
        # The process's health and the API's description stay open.
        assert client.get("/healthz").status_code == 200
        assert "/api/users/{user_id}/recommendations" in client.get("/openapi.json").json()["paths"]
