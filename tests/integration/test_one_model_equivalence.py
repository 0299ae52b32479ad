"""The model that is evaluated is the model that serves: the same events, cut into the same
batches, give the same recommendations whether ``EfficientRecStream`` keeps its state in
memory (what ``streamrec eval`` and the in-process stream run) or the real consumer keeps it
in PostgreSQL behind the real broker.

The consumer runs in this process over the real broker and PostgreSQL; its ``on_batch`` hook
hands over the records of each batch it committed, and the in-memory stream learns exactly
those batches, in the same order, under the same stored model version and settings
(``serving.shortlist_refresh_seconds=0``: both refresh the changed shortlists in every batch).
With identical batches nothing is left to float noise: the test demands the same item lists,
and scores within ``SCORE_TOLERANCE``, batch by batch and at the end. The published messages
name the same lead source per item as the stream, and a lead cluster only for the items the
clusters' vote put there (docs/events.md, "Recommendation messages").
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import msgspec
from sqlalchemy import Engine

from consumers import ConsumerHooks
from streamrec.config import Settings, TrainingSettings
from streamrec.events import InteractionEvent, ItemEvent, RecommendationMessage, RecommendedItem
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.memory_state import InMemoryStreamState
from streamrec.model.serving import ModelCache
from streamrec.model.stream import EfficientRecStream
from streamrec.model.table_replay import EfficientRecRecommender
from streamrec.preferences import preference_weight
from streamrec.services.batch import BatchResult, SourceRecord
from streamrec.services.recommending import current_recommendations
from streamrec.storage import UnitOfWork
from streamrec.validation import parse_interaction
from streamrec.wire.recommendations import decode_recommendation
from tests.integration.pipeline_support import (
    PipelineStack,
    catalogue,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
)

# Scores of the two runs may differ by float noise at most, never by a changed vote.
SCORE_TOLERANCE = 1e-5
EVENTS = 400
USERS = 25
ITEMS = 40

Ranking = list[tuple[str, float]]
# Per item: its lead source with its share, and its lead cluster's id (None: no cluster's
# vote put it there). A lead cluster's share is left out: it is a product of memberships,
# which float noise may round otherwise; the sources' shares come from ranks alone.
Leads = list[tuple[tuple[str, float], int | None]]


def equivalence_settings(kafka_settings: Settings, database_url: str) -> Settings:
    """The pipeline tests' settings, refreshing the changed shortlists in every batch, with
    the item neighbours and the decayed popularity on (their counts and scores live in the
    state too)."""
    settings = pipeline_settings(kafka_settings, database_url)
    serving = settings.serving.model_copy(
        update={
            "shortlist_refresh_seconds": 0.0,
            "neighbours": True,
            "neighbour_history": 5,
            "popularity_fallback": True,
            "popularity_weight": 0.3,
        }
    )
    return settings.model_copy(update={"serving": serving})


def trained_model(
    settings: Settings, events: Sequence[InteractionEvent], items: Sequence[ItemEvent]
) -> EfficientRec:
    """A model trained for a few steps on the events themselves: trained weights, not the
    initialisation, so that memberships and votes are spread as in production."""
    table = InteractionTable.from_rows(
        (
            event.user_id,
            event.item_id,
            preference_weight(event, settings.events),
            event.timestamp,
            event.value,
        )
        for event in events
    )
    attributes = {event.user_id: dict(event.user_attributes) for event in events}
    recommender = EfficientRecRecommender(
        settings.model, settings.serving, TrainingSettings(steps=30, users_per_step=16, seed=5)
    )
    recommender.fit(table, {item.item_id: item for item in items}, attributes)
    assert recommender.model is not None
    return recommender.model


def accepted_interactions(
    records: Sequence[SourceRecord], settings: Settings
) -> list[AcceptedInteraction]:
    """The batch's interaction records as the stream's events, in the order delivered."""
    accepted = []
    for record in records:
        if record.topic != settings.topics.interactions:
            continue
        event = parse_interaction(record.value, settings.events, key=record.key)
        assert isinstance(event, InteractionEvent), event
        weight = preference_weight(event, settings.events)
        accepted.append(AcceptedInteraction(event, weight, record.source_event(event.timestamp)))
    return accepted


def ranking(items: Sequence[RecommendedItem]) -> Ranking:
    return [(item.item_id, item.score) for item in items]


def leads(sources: Sequence[tuple[str, float]], clusters: Sequence) -> Leads:
    return [
        (source, None if cluster is None else cluster[0])
        for source, cluster in zip(sources, clusters, strict=True)
    ]


def published_leads(message: RecommendationMessage, payload: bytes) -> Leads:
    """The message's lead sources and clusters, checked against its JSON: every item names
    its source; an item without a lead cluster has neither ``cluster`` nor ``share``."""
    items = msgspec.json.decode(payload)["items"]
    assert len(message.lead_sources) == len(items) == len(message.lead_clusters)
    for item, cluster in zip(items, message.lead_clusters, strict=True):
        assert item["source"] in ("clusters", "neighbours", "popularity")
        assert 0.0 <= item["source_share"] <= 1.0
        assert ("cluster" in item) is (cluster is not None)
        assert ("share" in item) is (cluster is not None)
    return leads(message.lead_sources, message.lead_clusters)


def differences(expected: dict[str, list[Ranking]], actual: dict[str, list[Ranking]]) -> list[str]:
    """One line per user whose lists differ in an item, its place, or a score beyond
    ``SCORE_TOLERANCE`` (empty when they agree)."""
    found = []
    for user_id in sorted(expected.keys() | actual.keys()):
        left, right = expected.get(user_id, []), actual.get(user_id, [])
        agree = len(left) == len(right) and all(
            [item for item, _ in one] == [item for item, _ in other]
            and all(
                math.isclose(a, b, rel_tol=0.0, abs_tol=SCORE_TOLERANCE)
                for (_, a), (_, b) in zip(one, other, strict=True)
            )
            for one, other in zip(left, right, strict=True)
        )
        if not agree:
            found.append(f"user {user_id}: {left} != {right}")
    return found


@on_postgresql
def test_the_consumer_serves_what_the_in_memory_stream_recommends(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = equivalence_settings(kafka_settings, database_url)
    items = catalogue(ITEMS)
    events = interaction_stream(EVENTS, seed=11, users=USERS, items=ITEMS)
    pipeline = PipelineStack.with_active_model(
        settings, engine, trained_model(settings, events, items)
    )
    # The catalogue first, in a run of its own: every interaction batch then finds the
    # items' features stored, as the in-memory state holds them from the start.
    assert pipeline.feed([], items, idle_exit_seconds=1.0).counters.records == ITEMS

    batches: list[tuple[list[SourceRecord], list[bool]]] = []

    def on_batch(result: BatchResult, timing: object, records: Sequence[SourceRecord]) -> None:
        batches.append((list(records), list(result.prequential_hits)))

    summary = pipeline.feed(events, idle_exit_seconds=2.0, hooks=ConsumerHooks(on_batch=on_batch))
    assert summary.counters.records == len(events)
    assert summary.batches > 5, "too few batches to compare batch by batch"

    # The same stored version, loaded as the consumer loads it.
    with UnitOfWork(engine) as uow:
        serving = ModelCache().serving(pipeline.version, uow.models.get)
    stream = EfficientRecStream(
        serving, settings.serving, InMemoryStreamState({item.item_id: item for item in items})
    )
    learned_lists: dict[str, list[Ranking]] = {}
    learned_leads: dict[str, list[Leads]] = {}
    for records, consumer_hits in batches:
        learned = stream.learn_many(accepted_interactions(records, settings))
        stream.record(learned)
        assert learned.hits == consumer_hits
        for user in learned.recommendations:
            learned_lists.setdefault(user.user_id, []).append(ranking(user.items))
            learned_leads.setdefault(user.user_id, []).append(
                leads(user.lead_sources, user.lead_clusters)
            )

    # Every list the consumer published, per user in publication order (one key, one
    # partition), against the list the in-memory stream voted in the same batch.
    published: dict[str, list[Ranking]] = {}
    published_lead: dict[str, list[Leads]] = {}
    for record in pipeline.published_recommendations():
        message = decode_recommendation(record.value)
        assert message.model_version == pipeline.version
        published.setdefault(message.user_id, []).append(ranking(message.items))
        published_lead.setdefault(message.user_id, []).append(
            published_leads(message, record.value)
        )
    users = sorted({event.user_id for event in events})
    assert sorted(published) == users
    found = differences(learned_lists, published)
    assert not found, "published lists differ from the stream's:\n" + "\n".join(found[:10])
    assert published_lead == learned_leads
    # Fused lists were compared, and some items carry no cluster: the case at stake. Which
    # other sources lead some item depends on how the consumer's polls cut the stream into
    # batches (a slower machine gathers more events per batch), so only the fusion's own
    # source is required.
    every_lead = [lead for lists in published_lead.values() for items in lists for lead in items]
    assert "neighbours" in {source for (source, _), _ in every_lead}
    assert any(cluster is None for _, cluster in every_lead)

    # And the state as it stands: every user, from the in-memory state and from the
    # database, as `streamrec recommend` and the API read it.
    in_memory = dict(zip(users, map(ranking, stream.recommend_many(users)), strict=True))
    stored: dict[str, Ranking] = {}
    with UnitOfWork(engine) as uow:
        for user_id in users:
            message = current_recommendations(uow, user_id, settings.serving, now=time.time())
            assert message is not None
            stored[user_id] = ranking(message.items)
    found = differences(
        {user: [items] for user, items in in_memory.items()},
        {user: [items] for user, items in stored.items()},
    )
    assert not found, "stored recommendations differ:\n" + "\n".join(found[:10])
    # Not a comparison of empty lists.
    assert all(in_memory.values())
    assert sum(len(items) == settings.serving.recommendations for items in in_memory.values()) > (
        len(users) / 2
    )
