"""Recency-weighted pooling on the consumer: the incrementally kept user states equal a
from-scratch recency-weighted pooling of each user's stored interactions, whatever the
batching, and nothing changes without the setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.pooling import decayed_pooled_sum, full_pooled_sum, pooled_vectors
from streamrec.model.serving import ModelCache
from streamrec.services.batch import SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.services.rebuild import VersionRebuilder
from streamrec.state import ModelStatus, ModelVersion, UserProfile
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire import encode_interaction
from tests.fixtures.rating_streams import rating_stream
from tests.fixtures.small_model import register_model, small_model_settings

HALF_LIFE_SECONDS = 2.0
TOLERANCE = 1e-5

torch.set_num_threads(1)


def recency_settings(pooling_weight: str = "shifted", **model: object) -> Settings:
    return small_model_settings(
        {"pooling_weight": pooling_weight, **model},
        {"pooling_half_life_seconds": HALF_LIFE_SECONDS},
    )


def stream(count: int = 150, seed: int = 0, users: int = 4, items: int = 8) -> list[bytes]:
    """Ratings of a few users that change their weights often, with late arrivals (up to 5
    half-lives old), repeated deliveries and same-weight re-ratings (a newer timestamp only);
    2.75 maps to weight 0 and 0.5 to -1, zero coefficients under some poolings."""
    return rating_stream(
        count,
        seed,
        users=users,
        items=items,
        values=(0.5, 1.0, 2.75, 4.0, 5.0),
        seconds_apart=0.5,
        late_by=(0.0, 0.0, 3.0, 10.0),
        attribute_share=0.1,
    )


def records_of(payloads: list[bytes], first_offset: int = 0) -> list[SourceRecord]:
    return [
        SourceRecord("interactions", 0, first_offset + number, None, payload)
        for number, payload in enumerate(payloads)
    ]


def ingest(settings: Settings, engine: Engine, payloads: list[bytes], batch: int) -> None:
    service = IngestService(settings, engine, clock=lambda: 5_000.0)
    records = records_of(payloads)
    for start in range(0, len(records), batch):
        service.apply(records[start : start + batch])


def stored_states(engine: Engine, version: int | None = None) -> tuple[int, dict[str, UserProfile]]:
    """The states under ``version`` (default: the active one)."""
    with UnitOfWork(engine) as uow:
        version = uow.models.active_version() if version is None else version
        assert version is not None
        return version, uow.users.get_many(uow.interactions.user_ids(), version)


def pooled(state: UserProfile) -> np.ndarray:
    assert state.weighted_count is not None
    return pooled_vectors(state.pooled_sum[None, :], np.array([state.weighted_count]))[0]


def assert_states_match_scratch(
    engine: Engine, half_life_seconds: float | None, version: int | None = None
) -> int:
    """Every stored state under ``version`` (default: the active one) against a pooling of
    the user's whole stored interaction set (and its profile against encoding that); returns
    how many users were checked."""
    version, states = stored_states(engine, version)
    with UnitOfWork(engine) as uow:
        serving = ModelCache().serving(version, uow.models.get)
        interactions = uow.interactions.for_users(states)
        vectors = serving.item_vectors(
            {row.item_id for rows in interactions.values() for row in rows}, uow.items.get_many
        )
    for user_id, state in states.items():
        rows = interactions[user_id]
        item_vectors = np.stack([vectors[row.item_id] for row in rows])
        coefficients = serving.model.pooling_coefficients(np.array([row.weight for row in rows]))
        timestamps = np.array([row.timestamp for row in rows])
        assert state.nonzero_count == np.count_nonzero(coefficients)
        if half_life_seconds is None:
            assert state.weighted_count is None and state.pooling_reference_time is None
            total, count = full_pooled_sum(item_vectors, coefficients)
            counts = np.array([count])
            actual = pooled_vectors(state.pooled_sum[None, :], np.array([state.nonzero_count]))[0]
        else:
            assert state.pooling_reference_time == timestamps.max()
            total, weighted = decayed_pooled_sum(
                item_vectors, coefficients, timestamps, timestamps.max(), half_life_seconds
            )
            counts = np.array([weighted])
            assert state.weighted_count == pytest.approx(weighted, rel=1e-5, abs=1e-12)
            actual = pooled(state)
        expected = pooled_vectors(total[None, :], counts)[0]
        np.testing.assert_allclose(actual, expected, atol=TOLERANCE)
        encoded = serving.model.encode_pooled_sums(
            total[None, :].astype(np.float32), counts, [state.attributes]
        )
        assert state.profile is not None
        np.testing.assert_allclose(state.profile, encoded.profiles[0], atol=TOLERANCE)
    return len(states)


@pytest.mark.parametrize("pooling_weight", ["shifted", "preference", "presence"])
@pytest.mark.parametrize("batch", [1, 7, 40])
def test_incremental_recency_states_equal_a_pooling_from_scratch(
    pooling_weight: str, batch: int
) -> None:
    settings = recency_settings(pooling_weight)
    engine = create_memory_database()
    register_model(engine, settings)
    ingest(settings, engine, stream(), batch)
    assert assert_states_match_scratch(engine, HALF_LIFE_SECONDS) == 4


def test_the_same_stream_in_different_batchings_gives_the_same_pooled_vectors() -> None:
    settings = recency_settings()
    results = []
    for batch in (1, 5, 13, 1_000):
        engine = create_memory_database()
        register_model(engine, settings)
        ingest(settings, engine, stream(seed=3), batch)
        _, states = stored_states(engine)
        results.append({user_id: pooled(state) for user_id, state in states.items()})
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for user_id, vector in results[0].items():
            np.testing.assert_allclose(other[user_id], vector, atol=TOLERANCE)


def test_without_the_setting_states_have_no_reference_time() -> None:
    settings = small_model_settings()
    engine = create_memory_database()
    register_model(engine, settings)
    ingest(settings, engine, stream(seed=1), 9)
    _, states = stored_states(engine)
    assert states
    for state in states.values():
        assert state.weighted_count is None and state.pooling_reference_time is None
    assert_states_match_scratch(engine, None)


@pytest.mark.parametrize("first_half_life", [None, HALF_LIFE_SECONDS])
def test_a_changed_setting_pools_stored_states_again_from_scratch(
    first_half_life: float | None,
) -> None:
    """States stored under one setting and then updated under the other are pooled again."""
    first = small_model_settings(serving={"pooling_half_life_seconds": first_half_life})
    second_half_life = HALF_LIFE_SECONDS if first_half_life is None else None
    second = small_model_settings(serving={"pooling_half_life_seconds": second_half_life})
    engine = create_memory_database()
    register_model(engine, first)
    # Every user has events in both halves: each stored state is updated under both settings.
    payloads = stream(count=120, seed=4, users=3)
    records = records_of(payloads)
    IngestService(first, engine).apply(records[:60])
    IngestService(second, engine).apply(records[60:])
    assert assert_states_match_scratch(engine, second_half_life) == 3


def test_a_user_whose_newest_interaction_drops_out_is_pooled_again_from_scratch() -> None:
    """Item i2 (newest, weight 1) turns into a dislike (coefficient 0 under shifted pooling):
    the only term left is i1's, 50 half-lives older than the reference. Removing i2's term
    from the float32 sums would leave rounding far larger than i1's term; the row is pooled
    again from its whole set instead."""
    settings = recency_settings()
    engine = create_memory_database()
    register_model(engine, settings)
    service = IngestService(settings, engine)
    events = [
        InteractionEvent("e1", "u1", "i1", "like", 1_000.0),
        InteractionEvent("e2", "u1", "i2", "like", 1_100.0),
        InteractionEvent("e3", "u1", "i2", "dislike", 1_101.0),
    ]
    for offset, event in enumerate(events):
        service.apply(records_of([encode_interaction(event)], first_offset=offset))
    _, states = stored_states(engine)
    assert states["u1"].nonzero_count == 1
    assert assert_states_match_scratch(engine, HALF_LIFE_SECONDS) == 1
    assert np.abs(pooled(states["u1"])).max() > 0.01  # i1's vector, not a rounding remainder


def test_a_rebuilt_version_and_the_consumer_updates_during_the_rebuild_match_scratch() -> None:
    """Events that arrive while a version is BUILDING reach it through the consumer (users
    new to it pooled from scratch, then incrementally); the rebuild pools the rest."""
    settings = recency_settings()
    engine = create_memory_database()
    register_model(engine, settings)
    records = records_of(stream(count=160, seed=5, users=6))
    service = IngestService(settings, engine)
    service.apply(records[:80])
    config, weights = EfficientRec.new(settings.model, FeatureSchema(), seed=1).to_version()
    with UnitOfWork(engine) as uow:
        building = uow.models.add(ModelVersion(None, ModelStatus.BUILDING, config, weights))
        uow.commit()
    for start in range(80, 160, 9):
        service.apply(records[start : start + 9])
    VersionRebuilder(settings, engine, chunk_users=2).rebuild(building)
    assert assert_states_match_scratch(engine, HALF_LIFE_SECONDS, building) == 6
    assert assert_states_match_scratch(engine, HALF_LIFE_SECONDS) == 6
