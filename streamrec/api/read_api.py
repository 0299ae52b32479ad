"""The read API under ``/api``: recommendations (explained), items, clusters, the model
registry, training runs, dead letters and the pipeline's status. Nothing here writes; the
ad-hoc recommendations are a POST only because a history does not fit a URL.

Endpoints are plain (sync) functions: FastAPI runs them in its thread pool, so a slow query
never blocks the server's event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status

from streamrec.api import schemas
from streamrec.api.context import ApiContext
from streamrec.api.security import bearer_token
from streamrec.events import ItemEvent
from streamrec.services import browsing
from streamrec.services.explaining import HistoryEntry, explained_document
from streamrec.state import ModelVersion
from streamrec.storage.records import DeadLetter

# Bytes of a dead letter's payload the API shows.
PAYLOAD_PREVIEW_BYTES = 512


def context_of(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(context_of)]


def require_reader(context: Context, authorization: Annotated[str | None, Header()] = None) -> None:
    """Refuse a request without a valid token when ``api.read_token`` is set."""
    if context.keys.reading_is_open:
        return
    if context.keys.role_of_token(bearer_token(authorization)) is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a read or operator token is needed: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/api", tags=["read"], dependencies=[Depends(require_reader)])


def _no_model() -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no active model version")


def _recommendations_response(document: dict[str, Any]) -> Response:
    """The document as JSON, written by orjson without a second validation: it was built
    by ``explained_document`` (what ``schemas.Recommendations`` describes), and validating
    twenty items with their clusters again cost about a millisecond per request."""
    return Response(orjson.dumps(document), media_type="application/json")


@router.get("/users/{user_id}/recommendations", response_model=schemas.Recommendations)
def user_recommendations(user_id: str, context: Context) -> Response:
    """The user's current recommendations, as the pipeline would publish them now, each item
    explained: the sources that put it there (clusters, item neighbours with the recent
    items that named it, popularity) with their share of its score, the clusters that voted
    for it with their share of its vote, and its support."""
    with context.unit_of_work() as uow:
        explained = context.explainer.for_user(uow, user_id, context.clock())
    if explained is None:
        raise _no_model()
    return _recommendations_response(explained_document(explained))


@router.post("/recommendations", response_model=schemas.Recommendations)
def history_recommendations(history: schemas.AdHocHistory, context: Context) -> Response:
    """Recommendations for a history given in the request (item ids, optionally with
    weights in [-1, 1]), explained; nothing is stored."""
    entries = [
        HistoryEntry(entry) if isinstance(entry, str) else HistoryEntry(entry.item_id, entry.weight)
        for entry in history.items
    ]
    with context.unit_of_work() as uow:
        explained = context.explainer.for_history(uow, entries, context.clock(), history.attributes)
    if explained is None:
        raise _no_model()
    return _recommendations_response(explained_document(explained))


@router.get("/users/{user_id}", response_model=schemas.User)
def user(user_id: str, context: Context) -> dict[str, Any]:
    """The user's stored history (newest first), demographics and top-M memberships."""
    with context.unit_of_work() as uow:
        explained = context.explainer.for_user(uow, user_id, context.clock(), with_history=True)
        if explained is None:
            raise _no_model()
        if not explained.history and not explained.known_user:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id!r} is stored")
        attributes = uow.users.attributes_many([user_id]).get(user_id, {})
    message = explained.message
    return {
        "user_id": user_id,
        "known_user": explained.known_user,
        "model_version": message.model_version,
        "top_clusters": [
            {"cluster": cluster, "membership": membership}
            for cluster, membership in message.top_clusters
        ],
        "attributes": attributes,
        "history": [
            {
                "item_id": row.item_id,
                "title": _title_of(explained.items, row.item_id),
                "weight": row.weight,
                "event_type": row.event_type,
                "timestamp": row.timestamp,
            }
            for row in explained.history
        ],
    }


@router.get("/items", response_model=schemas.ItemsPage)
def items(
    context: Context,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    q: Annotated[str | None, Query(max_length=200, description="Title contains.")] = None,
) -> dict[str, Any]:
    """A page of the stored items by id, optionally those whose title contains ``q``."""
    with context.unit_of_work() as uow:
        page = uow.catalogue.items_page(after=after, limit=limit, title_contains=q)
    return {
        "items": [item_document(item) for item in page],
        "next_after": page[-1].item_id if len(page) == limit else None,
    }


@router.get("/items/{item_id}", response_model=schemas.ItemDetail)
def item(item_id: str, context: Context) -> dict[str, Any]:
    """One item and the places it holds on the active version's shortlists."""
    with context.unit_of_work() as uow:
        detail = browsing.item_detail(uow, item_id, uow.models.active_version())
    if detail.item is None and not detail.shortlists:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id!r} is known")
    return {
        "item_id": item_id,
        "item": None if detail.item is None else item_document(detail.item),
        "shortlists": [
            {"cluster": place.cluster, "rank": place.rank, "weight": place.weight}
            for place in detail.shortlists
        ],
    }


@router.get("/clusters", response_model=schemas.Clusters)
def clusters(context: Context, top: Annotated[int, Query(ge=0, le=200)] = 10) -> dict[str, Any]:
    """The active version's clusters, heaviest first, each with its ``top`` shortlist items."""
    with context.unit_of_work() as uow:
        version = uow.models.active_version()
        if version is None:
            raise _no_model()
        overview = browsing.clusters_overview(uow, version, top)
        titles = browsing.titles(uow, [i for c in overview for i, _ in c.top_items])
    return {
        "model_version": version,
        "clusters": [cluster_document(summary, titles) for summary in overview],
    }


@router.get("/clusters/{cluster}", response_model=schemas.ClusterDetail)
def cluster(cluster: int, context: Context) -> dict[str, Any]:
    """One cluster of the active version: its whole shortlist and its most rated items."""
    with context.unit_of_work() as uow:
        version = uow.models.active_version()
        if version is None:
            raise _no_model()
        detail = browsing.cluster_detail(uow, version, cluster)
        if detail is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cluster {cluster}")
        named = [i for i, _ in detail.shortlist] + [row.item_id for row in detail.statistics]
        titles = browsing.titles(uow, named)
    return {
        **cluster_document(detail.summary, titles),
        "shortlist": [
            {"item_id": i, "title": titles.get(i), "weight": w} for i, w in detail.shortlist
        ],
        "most_rated": [
            {**row._asdict(), "title": titles.get(row.item_id)} for row in detail.statistics
        ],
    }


@router.get("/models", response_model=list[schemas.ModelVersion])
def models(context: Context) -> list[dict[str, Any]]:
    """Every registered model version, newest first."""
    with context.unit_of_work() as uow:
        versions = browsing.model_versions(uow)
    return [model_document(model) for model in versions]


@router.get("/models/{version}", response_model=schemas.ModelVersion)
def model(version: int, context: Context) -> dict[str, Any]:
    with context.unit_of_work() as uow:
        versions = browsing.model_versions(uow)
    for found in versions:
        if found.version == version:
            return model_document(found)
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"model version {version} is not registered")


@router.get("/training-runs", response_model=list[schemas.TrainingRun])
def training_runs(
    context: Context, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> list[dict[str, Any]]:
    """The latest training runs, newest first."""
    with context.unit_of_work() as uow:
        runs = browsing.training_runs(uow, limit)
    return [
        {
            "id": run.id,
            "trigger": run.trigger.value,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "outcome": run.outcome,
            "reason": run.reason,
            "candidate_version": run.candidate_version,
            "parent_version": run.parent_version,
        }
        for run in runs
    ]


@router.get("/dead-letters", response_model=list[schemas.DeadLetter])
def dead_letters(
    context: Context,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """The latest dead letters, newest first, optionally of one reason."""
    with context.unit_of_work() as uow:
        letters = uow.dead_letters.recent(limit, reason)
    return [dead_letter_document(letter) for letter in letters]


@router.get("/status", response_model=schemas.Status)
def pipeline_status(context: Context) -> dict[str, Any]:
    """Lag per partition (stored offsets against the broker's end offsets when the broker
    answers), throughput, dead letters by reason, the active version and counts."""
    view = context.status()
    health = view.health
    report = health.status
    return {
        "consumer_group": report.consumer_group,
        "active_model_version": report.active_model_version,
        "partitions": [
            {
                "topic": lag.topic,
                "partition": lag.partition,
                "stored_offset": lag.stored_offset,
                "log_start": None if lag.log is None else lag.log.start,
                "log_end": None if lag.log is None else lag.log.end,
                "lag": lag.lag,
                "lag_text": lag.describe_lag(),
            }
            for lag in report.partitions
        ],
        "total_lag": report.total_lag,
        "records_per_second": view.records_per_second,
        "last_batch_at": health.last_batch_at,
        "dead_letters_by_reason": report.dead_letters_by_reason,
        "users_with_state": report.users_with_state,
        "items": report.items,
        "interactions": report.interactions,
        "broker_error": report.broker_error,
    }


def item_document(item: ItemEvent) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "title": item.title,
        "timestamp": item.timestamp,
        "categorical": {name: list(values) for name, values in item.categorical.items()},
        "numeric": dict(item.numeric),
    }


def cluster_document(summary: browsing.ClusterSummary, titles: dict[str, str]) -> dict[str, Any]:
    return {
        "cluster": summary.cluster,
        "mass": summary.mass,
        "share": summary.share,
        "shortlist_length": summary.shortlist_length,
        "top_items": [
            {"item_id": i, "title": titles.get(i), "weight": w} for i, w in summary.top_items
        ],
    }


def model_document(model: ModelVersion) -> dict[str, Any]:
    return {
        "version": model.version,
        "status": model.status.value,
        "parent_version": model.parent_version,
        "created_at": model.created_at,
        "promoted_at": model.promoted_at,
        "reason": model.reason,
        "metrics": model.metrics,
        "data_window": model.data_window,
    }


def dead_letter_document(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "received_at": letter.received_at,
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "reason": letter.reason,
        "detail": letter.detail,
        "key": None if letter.key is None else letter.key.decode("utf-8", "replace"),
        "payload_preview": letter.payload[:PAYLOAD_PREVIEW_BYTES].decode("utf-8", "replace"),
        "payload_bytes": letter.original_size,
    }


def _title_of(items: Mapping[str, ItemEvent], item_id: str) -> str | None:
    stored = items.get(item_id)
    return None if stored is None else stored.title
