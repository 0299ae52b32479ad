"""Decayed cluster statistics (``serving.decay_half_life_days``) in the consumer and the
rebuild: whatever the batching, the stored statistics equal the decayed contributions of
every user's final state, each item term weighed at its event time and each mass at the
user's last event, from the version's landmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.model.contributions import (
    UserContribution,
    aggregate_deltas,
    batch_contribution_deltas,
    contribution_deltas,
)
from streamrec.model.decay import ForwardDecay
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.memberships import rounded_memberships
from streamrec.services.ingest import IngestService
from streamrec.services.rebuild import VersionRebuilder
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.small_model import register_model, small_model_settings
from tests.unit.test_user_states_recency import records_of, stream

HALF_LIFE_SECONDS = 3.0
LANDMARK = 1_020.0  # inside the stream's times (1,000 s on), as a trained version's would be

torch.set_num_threads(1)


def decay_settings() -> Settings:
    return small_model_settings(serving={"decay_half_life_days": HALF_LIFE_SECONDS / 86_400.0})


def register_dated_model(engine: Engine, settings: Settings, status: ModelStatus) -> int:
    model = EfficientRec.new(settings.model, FeatureSchema(), seed=1)
    model.date_statistics(np.array([0.0, LANDMARK]))
    config, weights = model.to_version()
    with UnitOfWork(engine) as uow:
        version = uow.models.add(ModelVersion(None, status, config, weights))
        uow.commit()
    return version


def ingest(engine: Engine, payloads: list[bytes], batch: int) -> None:
    service = IngestService(decay_settings(), engine, clock=lambda: 5_000.0)
    records = records_of(payloads)
    for start in range(0, len(records), batch):
        service.apply(records[start : start + batch])


def stored_statistics(engine: Engine, version: int) -> tuple[dict, dict[int, float]]:
    with UnitOfWork(engine) as uow:
        clusters = uow.clusters.clusters(version)
        top = uow.clusters.top_items_by_cluster(version, clusters, 1_000)
        masses = uow.clusters.masses(version)
    items = {
        (cluster, row.item_id): (row.liked_mass, row.rated_mass, row.weighted_sum)
        for cluster, rows in top.items()
        for row in rows
    }
    return items, masses


def statistics_from_scratch(engine: Engine, version: int) -> tuple[dict, dict[int, float]]:
    """Each stored user's decayed contribution, from their stored state and interactions."""
    with UnitOfWork(engine) as uow:
        stored = uow.models.get(version)
        assert stored is not None
        architecture = EfficientRec.from_version(stored.config, stored.weights).architecture
        user_ids = uow.interactions.user_ids()
        states = uow.users.get_many(user_ids, version)
        interactions = uow.interactions.for_users(user_ids)
    decay = ForwardDecay(HALF_LIFE_SECONDS, architecture.statistics_time_landmark)
    item_deltas, mass_deltas = [], []
    for user_id, state in states.items():
        rows = interactions[user_id]
        contribution = UserContribution(
            rounded_memberships(state.top_clusters, architecture.statistics_membership_precision),
            {row.item_id: row.weight for row in rows},
            {row.item_id: row.timestamp for row in rows},
            max(row.timestamp for row in rows),
        )
        items, masses = contribution_deltas(UserContribution((), {}), contribution, decay)
        item_deltas += items
        mass_deltas += masses
    items, masses = aggregate_deltas(item_deltas, mass_deltas)
    return (
        {
            (delta.cluster, delta.item_id): (delta.liked_mass, delta.rated_mass, delta.weighted_sum)
            for delta in items
        },
        {delta.cluster: delta.mass for delta in masses},
    )


def assert_same_statistics(first: tuple[dict, dict], second: tuple[dict, dict]) -> None:
    """Equal up to float rounding; a pair one side lacks must be all zeros on the other."""
    for part, (one, other) in enumerate(zip(first, second, strict=True)):
        for key in one.keys() | other.keys():
            zero = (0.0, 0.0, 0.0) if part == 0 else 0.0
            values = np.array([one.get(key, zero), other.get(key, zero)], dtype=np.float64)
            # Cancelled terms leave rounding remainders of the size of what they cancelled.
            tolerance = 1e-9 * max(1.0, float(np.abs(values).max()))
            assert np.allclose(values[0], values[1], rtol=0.0, atol=tolerance), key


@pytest.mark.parametrize("batch", [1, 7, 40])
def test_the_consumer_keeps_the_decayed_contributions_of_every_users_final_state(
    batch: int,
) -> None:
    engine = create_memory_database()
    version = register_dated_model(engine, decay_settings(), ModelStatus.ACTIVE)
    ingest(engine, stream(count=150, seed=2), batch)
    stored = stored_statistics(engine, version)
    assert stored[1], "no cluster mass was stored"
    assert_same_statistics(stored, statistics_from_scratch(engine, version))


def test_decay_weighs_old_events_less_than_the_undecayed_statistics_do() -> None:
    """The check above is not vacuous: the decayed masses differ from the plain ones."""
    decayed, plain = create_memory_database(), create_memory_database()
    version = register_dated_model(decayed, decay_settings(), ModelStatus.ACTIVE)
    register_model(plain, small_model_settings(), seed=1)
    ingest(decayed, stream(count=150, seed=2), 10)
    service = IngestService(small_model_settings(), plain, clock=lambda: 5_000.0)
    service.apply(records_of(stream(count=150, seed=2)))
    decayed_mass = sum(stored_statistics(decayed, version)[1].values())
    plain_mass = sum(stored_statistics(plain, 1)[1].values())
    assert 0.0 < plain_mass <= 4.0  # four users, each with top memberships summing to <= 1
    # The users' last events come about 18 half-lives after the landmark: g is near 2^18.
    assert decayed_mass > 1_000 * plain_mass


def test_a_rebuilt_version_and_the_consumer_updates_during_the_rebuild_match_scratch() -> None:
    settings = decay_settings()
    engine = create_memory_database()
    register_dated_model(engine, settings, ModelStatus.ACTIVE)
    records = records_of(stream(count=160, seed=5, users=6))
    service = IngestService(settings, engine)
    service.apply(records[:80])
    building = register_dated_model(engine, settings, ModelStatus.BUILDING)
    for start in range(80, 160, 9):
        service.apply(records[start : start + 9])
    VersionRebuilder(settings, engine, chunk_users=2).rebuild(building)
    assert_same_statistics(
        stored_statistics(engine, building), statistics_from_scratch(engine, building)
    )


CONTRIBUTIONS = st.builds(
    lambda clusters, items: UserContribution(
        tuple(sorted(clusters.items())),
        {item: weight for item, (weight, _) in items.items()},
        {item: time for item, (_, time) in items.items()},
        max((time for _, time in items.values()), default=0.0),
    ),
    st.dictionaries(st.integers(0, 3), st.sampled_from([0.25, 0.5, 1.0]), max_size=3),
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.tuples(st.sampled_from([-1.0, 0.0, 0.5, 1.0]), st.sampled_from([0.0, 5.0, 20.0])),
        max_size=4,
    ),
)


@settings(max_examples=80, deadline=None)
@given(transitions=st.lists(st.tuples(CONTRIBUTIONS, CONTRIBUTIONS), min_size=1, max_size=5))
def test_the_batch_deltas_with_decay_sum_the_reference_deltas(
    transitions: list[tuple[UserContribution, UserContribution]],
) -> None:
    decay = ForwardDecay(half_life_seconds=10.0, landmark=5.0)
    reference_items: list = []
    reference_masses: list = []
    for old, new in transitions:
        items, masses = contribution_deltas(old, new, decay)
        reference_items += items
        reference_masses += masses
    items, masses = aggregate_deltas(reference_items, reference_masses)
    batch_items, batch_masses = batch_contribution_deltas(transitions, decay)
    assert_same_statistics(
        (
            {(d.cluster, d.item_id): (d.liked_mass, d.rated_mass, d.weighted_sum) for d in items},
            {d.cluster: d.mass for d in masses},
        ),
        (
            {
                (d.cluster, d.item_id): (d.liked_mass, d.rated_mass, d.weighted_sum)
                for d in batch_items
            },
            {d.cluster: d.mass for d in batch_masses},
        ),
    )
