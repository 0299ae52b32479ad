"""The ingest service on an in-memory SQLite database: one transaction per batch, exactly-once
state whatever the batching or the replays, dead letters, and the no-model mode."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streamrec.config import Settings
from streamrec.events import InteractionEvent, ItemEvent
from streamrec.model.contributions import UserContribution, aggregate_deltas, contribution_deltas
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.memberships import rounded_memberships
from streamrec.model.pooling import full_pooled_sum
from streamrec.model.serving import UnusableModelError
from streamrec.services.batch import SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.validation import parse_interaction
from streamrec.wire import encode_interaction, encode_item
from tests.fixtures.rating_streams import rating_stream
from tests.fixtures.small_model import register_model, small_model_settings
from tests.fixtures.snapshots import differences, take_snapshot

INTERACTIONS = "interactions"
ITEMS = "items"

torch.set_num_threads(1)


@pytest.fixture
def settings() -> Settings:
    return small_model_settings()


def as_records(payloads: list[bytes], topic: str = INTERACTIONS, partitions: int = 2):
    offsets = [0] * partitions
    records = []
    for number, payload in enumerate(payloads):
        partition = number % partitions
        records.append(SourceRecord(topic, partition, offsets[partition], None, payload))
        offsets[partition] += 1
    return records


def test_dead_letters_are_stored_with_their_source_and_returned_for_publishing(
    settings: Settings,
) -> None:
    engine = create_memory_database()
    service = IngestService(settings, engine, clock=lambda: 50.0)
    valid = encode_interaction(InteractionEvent("e1", "u1", "i1", "click", 10.0))
    records = [
        SourceRecord(INTERACTIONS, 3, 10, b"u1", valid),
        SourceRecord(INTERACTIONS, 3, 11, b"u2", b"\xff\xfe"),
        SourceRecord(ITEMS, 0, 4, b"i1", b'{"schema_version": 1}'),
    ]
    result = service.apply(records)
    assert [(letter.reason, letter.source_offset) for letter in result.dead_letters] == [
        ("invalid_utf8", 11),
        ("missing_field", 4),
    ]
    assert result.next_offsets == {(INTERACTIONS, 3): 12, (ITEMS, 0): 5}
    with UnitOfWork(engine) as uow:
        [stored_item_letter, stored_letter] = uow.dead_letters.recent()
        assert stored_letter.payload == b"\xff\xfe"
        assert (stored_letter.source_topic, stored_letter.source_partition) == (INTERACTIONS, 3)
        assert stored_letter.key == b"u2"
        assert stored_letter.received_at == 50.0
        assert stored_letter.detail
        assert stored_item_letter.source_topic == ITEMS
        assert uow.interactions.count() == 1


def test_replayed_records_do_not_touch_state_but_are_published_again(settings: Settings) -> None:
    engine = create_memory_database()
    register_model(engine, settings)
    service = IngestService(settings, engine)
    records = as_records([*rating_stream(40), b"not json"], partitions=1)
    first = service.apply(records)
    with UnitOfWork(engine) as uow:
        before = take_snapshot(uow)
    again = service.apply(records)
    with UnitOfWork(engine) as uow:
        assert differences(before, take_snapshot(uow), tolerance=0.0) == []
        assert sum(uow.dead_letters.counts_by_reason().values()) == 1
    assert again.counters.records_already_applied == len(records)
    assert again.counters.interactions_applied == 0
    assert {message.user_id for message in again.recommendations} == {
        message.user_id for message in first.recommendations
    }
    assert [letter.payload for letter in again.dead_letters] == [b"not json"]
    assert {m.user_id: m.items for m in again.recommendations} == {
        m.user_id: m.items for m in first.recommendations
    }


def test_state_is_the_same_however_the_stream_is_batched_and_replayed(settings: Settings) -> None:
    records = as_records(rating_stream(300, seed=1))
    one_batch = create_memory_database()
    register_model(one_batch, settings)
    IngestService(settings, one_batch).apply(records)

    batched = create_memory_database()
    register_model(batched, settings)
    service = IngestService(settings, batched)
    rng = random.Random(7)
    position = 0
    while position < len(records):
        size = rng.randint(1, 40)
        # A crash after the database commit: part of the batch comes again with the next.
        replay_from = max(0, position - rng.randint(0, 10))
        service.apply(records[replay_from : position + size])
        position += size

    with UnitOfWork(one_batch) as first, UnitOfWork(batched) as second:
        assert differences(take_snapshot(first), take_snapshot(second)) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demographics_are_the_newest_per_attribute_whatever_the_delivery_order(
    settings: Settings, seed: int
) -> None:
    payloads = rating_stream(200, seed=seed, users=4, attribute_share=0.4)
    events = [parse_interaction(payload, settings.events) for payload in payloads]
    newest: dict[str, dict[str, tuple[tuple[float, str], str]]] = {}
    for event in events:
        known = newest.setdefault(event.user_id, {})
        for name, value in event.user_attributes.items():
            key = (event.timestamp, event.event_id)
            if name not in known or key > known[name][0]:
                known[name] = (key, value)
    expected = {
        user_id: {name: value for name, (_, value) in values.items()}
        for user_id, values in newest.items()
    }

    rng = random.Random(seed)
    shuffled = rng.sample(payloads, len(payloads))  # late and early arrivals alike
    engine = create_memory_database()
    register_model(engine, settings)
    service = IngestService(settings, engine)
    records = as_records(shuffled)
    for start in range(0, len(records), 17):
        service.apply(records[start : start + 17])

    with UnitOfWork(engine) as uow:
        stored = take_snapshot(uow).attributes
    assert {user_id: values for user_id, values in stored.items() if values} == expected
    assert len(expected) == 4


@pytest.mark.parametrize("membership_precision", [0.0, 0.1])
def test_incremental_state_equals_a_recomputation_from_the_interactions(
    membership_precision: float,
) -> None:
    settings = small_model_settings({"statistics_membership_precision": membership_precision})
    engine = create_memory_database()
    register_model(engine, settings)
    # The precision is the model version's: a consumer configured otherwise keeps to it.
    service = IngestService(small_model_settings({"statistics_membership_precision": 0.3}), engine)
    records = as_records(rating_stream(300, seed=2))
    for start in range(0, len(records), 25):
        service.apply(records[start : start + 25])

    with UnitOfWork(engine) as uow:
        snapshot = take_snapshot(uow)
        model = EfficientRec.from_version(uow.models.active().config, uow.models.active().weights)
        states = uow.users.get_many(
            {user for user, _ in snapshot.interactions}, snapshot.model_version
        )
    assert states
    weights_by_user: dict[str, dict[str, float]] = {}
    for (user_id, item_id), (weight, *_rest) in snapshot.interactions.items():
        weights_by_user.setdefault(user_id, {})[item_id] = weight
    for user_id, state in states.items():
        item_ids = sorted(weights_by_user[user_id])
        weights = np.array([weights_by_user[user_id][item] for item in item_ids])
        expected_sum, expected_count = full_pooled_sum(
            model.item_vectors(item_ids, {}), model.pooling_coefficients(weights)
        )
        np.testing.assert_allclose(state.pooled_sum, expected_sum, atol=1e-5)
        assert state.nonzero_count == expected_count
        assert state.interaction_count == len(item_ids)

    # The statistics hold each user's full contribution, as if added in one go.
    all_items, all_masses = [], []
    for user_id, state in states.items():
        items, masses = contribution_deltas(
            UserContribution((), {}),
            UserContribution(
                rounded_memberships(state.top_clusters, membership_precision),
                weights_by_user[user_id],
            ),
        )
        all_items += items
        all_masses += masses
    expected_items, expected_masses = aggregate_deltas(all_items, all_masses)
    for delta in expected_items:
        stored = snapshot.item_statistics.get((delta.cluster, delta.item_id), (0.0, 0.0, 0.0))
        assert stored == pytest.approx(
            (delta.liked_mass, delta.rated_mass, delta.weighted_sum), abs=1e-6
        )
    expected_keys = {(delta.cluster, delta.item_id) for delta in expected_items}
    for key, values in snapshot.item_statistics.items():
        if key not in expected_keys:
            assert values == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    for delta in expected_masses:
        assert snapshot.masses[delta.cluster] == pytest.approx(delta.mass, abs=1e-6)


def test_recommendations_exclude_the_users_items_and_name_their_source(
    settings: Settings,
) -> None:
    engine = create_memory_database()
    register_model(engine, settings)
    service = IngestService(settings, engine)
    records = as_records(rating_stream(200, seed=3), partitions=1)
    result = service.apply(records)
    with UnitOfWork(engine) as uow:
        snapshot = take_snapshot(uow)
    seen: dict[str, set[str]] = {}
    for user_id, item_id in snapshot.interactions:
        seen.setdefault(user_id, set()).add(item_id)
    assert len(result.recommendations) == len(seen)
    assert any(message.items for message in result.recommendations)
    for message in result.recommendations:
        assert not {item.item_id for item in message.items} & seen[message.user_id]
        scores = [item.score for item in message.items]
        assert scores == sorted(scores, reverse=True)
        assert len(message.items) <= settings.serving.recommendations
        assert message.model_version == snapshot.model_version
        last_offset = max(
            record.offset for record in records if f'"{message.user_id}"'.encode() in record.value
        )
        assert message.source is not None and message.source.offset == last_offset


def test_without_a_model_interactions_are_stored_and_a_later_model_builds_state(
    settings: Settings,
) -> None:
    engine = create_memory_database()
    service = IngestService(settings, engine)
    first = service.apply(
        [
            SourceRecord(
                INTERACTIONS,
                0,
                0,
                None,
                encode_interaction(InteractionEvent("e1", "u1", "i1", "rating", 10.0, value=5.0)),
            ),
        ]
    )
    assert first.recommendations == []
    assert first.model_version is None
    version = register_model(engine, settings)
    second = service.apply(
        [
            SourceRecord(
                INTERACTIONS,
                0,
                1,
                None,
                encode_interaction(InteractionEvent("e2", "u1", "i2", "rating", 11.0, value=4.0)),
            ),
        ]
    )
    assert second.model_version == version
    with UnitOfWork(engine) as uow:
        state = uow.users.get_many(["u1"], version)["u1"]
    # Built from the whole set: the event before the model counts too.
    assert (state.interaction_count, state.nonzero_count) == (2, 2)


def test_an_item_update_changes_the_vector_used_for_later_events(settings: Settings) -> None:
    engine = create_memory_database()
    version = register_model(engine, settings)
    service = IngestService(settings, engine)

    def rate(offset: int, user_id: str) -> SourceRecord:
        event = InteractionEvent(f"e{offset}", user_id, "i1", "rating", float(offset), value=5.0)
        return SourceRecord(INTERACTIONS, 0, offset, None, encode_interaction(event))

    featured = ItemEvent("i1", 5.0, "Heat", {"genre": ("crime",)}, {})
    service.apply([rate(0, "u1")])
    service.apply([SourceRecord(ITEMS, 0, 0, b"i1", encode_item(featured)), rate(1, "u2")])
    with UnitOfWork(engine) as uow:
        states = uow.users.get_many(["u1", "u2"], version)
        model = EfficientRec.from_version(uow.models.active().config, uow.models.active().weights)
        assert uow.items.get_many(["i1"])["i1"].title == "Heat"
    plain = model.item_vectors(["i1"], {})[0]
    with_features = model.item_vectors(["i1"], {"i1": featured})[0]
    np.testing.assert_allclose(states["u1"].pooled_sum, plain, atol=1e-6)
    np.testing.assert_allclose(states["u2"].pooled_sum, with_features, atol=1e-6)


hostile_payloads = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=40).map(str.encode),
    st.sampled_from(
        [
            b"",
            b"null",
            b'{"schema_version": 1, "event_id": "x", "user_id": "u", "item_id": "i",'
            b' "type": "rating", "timestamp": 1.0, "value": NaN}',
            b'{"schema_version": 1, "event_id": true, "user_id": "u", "item_id": "i",'
            b' "type": "click", "timestamp": 1.0}',
            b'{"schema_version": 2}',
            b"[" * 5000,
        ]
    ),
)


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bad=st.lists(hostile_payloads, min_size=1, max_size=8), seed=st.integers(0, 1000))
def test_hostile_payloads_become_dead_letters_and_valid_events_around_them_apply(
    settings: Settings, bad: list[bytes], seed: int
) -> None:
    engine = create_memory_database()
    register_model(engine, settings)
    valid = rating_stream(15, seed=seed)
    rng = random.Random(seed)
    mixed = [(payload, True) for payload in valid] + [(payload, False) for payload in bad]
    rng.shuffle(mixed)
    records = as_records([payload for payload, _ in mixed], partitions=1)
    result = IngestService(settings, engine).apply(records)
    bad_offsets = {record.offset for record, (_, ok) in zip(records, mixed, strict=True) if not ok}
    assert {letter.source_offset for letter in result.dead_letters} == bad_offsets
    assert all(letter.reason and letter.detail for letter in result.dead_letters)
    with UnitOfWork(engine) as uow:
        stored = take_snapshot(uow).interactions
        assert sum(uow.dead_letters.counts_by_reason().values()) == len(bad)
    events = [parse_interaction(payload, settings.events) for payload in valid]
    assert stored.keys() == {(event.user_id, event.item_id) for event in events}
    assert result.counters.interactions_applied + result.counters.interactions_ignored == len(valid)


def test_an_active_model_that_cannot_be_loaded_stops_the_batch_with_a_clear_error(
    settings: Settings,
) -> None:
    engine = create_memory_database()
    with UnitOfWork(engine) as uow:
        uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, {"clusters": 3}, b"not torch"))
        uow.commit()
    service = IngestService(settings, engine)
    event = InteractionEvent("e1", "u1", "i1", "click", 10.0)
    with pytest.raises(UnusableModelError, match="cannot be loaded"):
        service.apply([SourceRecord(INTERACTIONS, 0, 0, None, encode_interaction(event))])
    with UnitOfWork(engine) as uow:
        # Nothing of the batch was kept: it is applied again once the model is fixed.
        assert uow.interactions.count() == 0
        assert uow.offsets.get(settings.kafka.consumer_group, INTERACTIONS) == {}


def test_published_lists_rank_the_clusters_candidates_by_the_retrieval_score(
    settings: Settings,
) -> None:
    """With re-ranking on (the default), each user's list is the clusters' candidates ordered
    by (P z_u) . t_j + w log(vote), recomputed here from the stored profile and the model; with
    it off, the same stream publishes the plain votes."""
    records = as_records(rating_stream(200, seed=3), partitions=1)
    published = {}
    for rerank in (True, False):
        changed = settings.model_copy(
            update={"serving": settings.serving.model_copy(update={"rerank": rerank})}
        )
        engine = create_memory_database()
        version = register_model(engine, changed)
        result = IngestService(changed, engine).apply(records)
        published[rerank] = {message.user_id: message for message in result.recommendations}
    with UnitOfWork(engine) as uow:
        model = EfficientRec.from_version(*_stored(uow, version))
        states = uow.users.get_many(list(published[True]), version)
        shortlists = uow.clusters.shortlists(version, range(settings.model.clusters))
    reranked_some = False
    for user_id, message in published[True].items():
        voted = published[False][user_id]
        query = model.retrieval_queries(states[user_id].profile[None, :])[0].astype(np.float64)
        votes = {}
        for cluster, membership in states[user_id].top_clusters:
            for item_id, weight in shortlists.get(cluster, []):
                votes[item_id] = votes.get(item_id, 0.0) + membership * weight
        items = [item.item_id for item in message.items]
        targets = model.item_targets(items, {})
        expected = [
            float(target.astype(np.float64) @ query)
            + settings.serving.rerank_vote_weight * float(np.log(votes[item_id]))
            for item_id, target in zip(items, targets, strict=True)
        ]
        assert [item.score for item in message.items] == pytest.approx(expected, rel=1e-4)
        assert set(items) <= set(votes)
        reranked_some |= items != [item.item_id for item in voted.items]
    assert reranked_some


def _stored(uow: UnitOfWork, version: int) -> tuple[dict, bytes]:
    stored = uow.models.get(version)
    assert stored is not None
    return stored.config, stored.weights
