"""Repository behaviour on real SQLite and PostgreSQL: upserts, exact vectors, additive cluster
statistics, offsets, dead letters, the model registry and the training log."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from streamrec.events import ItemEvent
from streamrec.model.contributions import aggregate_deltas
from streamrec.state import (
    ClusterItemDelta,
    ClusterItemStatistics,
    ClusterMassDelta,
    Interaction,
    ModelStatus,
    ModelVersion,
    UserProfile,
)
from streamrec.storage import (
    DeadLetter,
    InvalidRecordError,
    TrainingTrigger,
    UnitOfWork,
    UnknownModelVersionError,
)

UnitOfWorkFactory = Callable[[], UnitOfWork]


def _model(
    status: ModelStatus = ModelStatus.CANDIDATE, weights: bytes = b"weights"
) -> ModelVersion:
    return ModelVersion(version=None, status=status, config={"clusters": 4}, weights=weights)


@pytest.fixture
def model_version(unit_of_work_factory: UnitOfWorkFactory) -> int:
    with unit_of_work_factory() as uow:
        version = uow.models.add(_model(ModelStatus.ACTIVE))
        uow.commit()
    return version


def _profile(user_id: str, model_version: int, seed: int) -> UserProfile:
    random = np.random.default_rng(seed)
    return UserProfile(
        user_id=user_id,
        pooled_sum=random.standard_normal(8).astype(np.float32),
        nonzero_count=3,
        interaction_count=4,
        attributes={"age": "25-34"},
        profile=random.standard_normal(6).astype(np.float32),
        top_clusters=((2, 0.875), (0, 0.5)),
        model_version=model_version,
        last_event_at=1_700_000_000.5,
    )


# Items


def test_items_upsert_keeps_the_newest_event_whatever_the_order(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    newer = ItemEvent("i1", 20.0, "Heat (1995)", {"genres": ("crime", "drama")}, {"year": 1995.0})
    older = ItemEvent("i1", 10.0, "Heat", {"genres": ("crime",)}, {})
    with unit_of_work_factory() as uow:
        uow.items.save_many([newer])
        uow.items.save_many([older, ItemEvent("i2", 5.0)])
        uow.commit()

    with unit_of_work_factory() as uow:
        stored = uow.items.get_many(["i1", "i2", "unknown"])

    assert stored == {"i1": newer, "i2": ItemEvent("i2", 5.0)}


# Users


def test_a_user_state_round_trips_exactly(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    profile = _profile("u1", model_version, seed=1)
    with unit_of_work_factory() as uow:
        uow.users.save_many([profile])
        uow.commit()

    with unit_of_work_factory() as uow:
        stored = uow.users.get_many(["u1", "unknown"], model_version)

    assert list(stored) == ["u1"]
    loaded = stored["u1"]
    assert loaded.pooled_sum.tobytes() == profile.pooled_sum.tobytes()
    assert loaded.profile is not None and profile.profile is not None
    assert loaded.profile.tobytes() == profile.profile.tobytes()
    for field in ("nonzero_count", "interaction_count", "attributes", "top_clusters"):
        assert getattr(loaded, field) == getattr(profile, field), field
    assert (loaded.model_version, loaded.last_event_at) == (model_version, profile.last_event_at)


def test_saving_a_state_again_replaces_it(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    first, second = _profile("u1", model_version, seed=1), _profile("u1", model_version, seed=2)
    second.profile = None
    with unit_of_work_factory() as uow:
        uow.users.save_many([first])
        uow.users.save_many([second])
        uow.commit()

    with unit_of_work_factory() as uow:
        loaded = uow.users.get_many(["u1"], model_version)["u1"]

    assert loaded.pooled_sum.tobytes() == second.pooled_sum.tobytes()
    assert loaded.profile is None


def test_every_write_of_a_state_stores_a_new_token_unless_given_one(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow:
        uow.users.save_many([_profile("u1", model_version, seed=1)], state_token=2**62 + 1)
        given = uow.users.state_tokens(["u1", "u2"], model_version)
        uow.users.save_many([_profile("u1", model_version, seed=2)])
        fresh = uow.users.state_tokens(["u1"], model_version)
        uow.users.save_many([_profile("u1", model_version, seed=3)])
        uow.commit()

    with unit_of_work_factory() as uow:
        stored = uow.users.state_tokens(["u1"], model_version)
    assert given == {"u1": 2**62 + 1}  # u2 has no state
    assert fresh["u1"] not in (None, 2**62 + 1)
    assert stored["u1"] not in (None, 2**62 + 1, fresh["u1"])


def test_states_of_two_model_versions_coexist(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow:
        rebuilt_version = uow.models.add(_model(ModelStatus.BUILDING))
        uow.users.save_many(
            [_profile("u1", model_version, seed=1), _profile("u1", rebuilt_version, seed=2)]
        )
        uow.commit()

    with unit_of_work_factory() as uow:
        serving = uow.users.get_many(["u1"], model_version)["u1"]
        rebuilt = uow.users.get_many(["u1"], rebuilt_version)["u1"]
        uow.users.delete_version(rebuilt_version)
        counts = (uow.users.count(model_version), uow.users.count(rebuilt_version))

    expected_serving = _profile("u1", model_version, seed=1).pooled_sum
    assert serving.pooled_sum.tobytes() == expected_serving.tobytes()
    assert rebuilt.pooled_sum.tobytes() != serving.pooled_sum.tobytes()
    assert counts == (1, 0)


def test_saving_states_leaves_stored_attributes_to_save_attributes(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    stale = _profile("u1", model_version, seed=1)
    stale.attributes = {"age": "18-24"}
    with unit_of_work_factory() as uow:
        uow.users.save_attributes({"u1": {"age": "35-44", "country": "VN"}})
        uow.users.save_many([stale, _profile("u2", model_version, seed=2)])
        uow.commit()

    with unit_of_work_factory() as uow:
        attributes = uow.users.attributes_many(["u1", "u2", "unknown"])
        loaded = uow.users.get_many(["u1"], model_version)["u1"]

    assert attributes == {"u1": {"age": "35-44", "country": "VN"}, "u2": {"age": "25-34"}}
    assert loaded.attributes == attributes["u1"]


def test_user_ids_come_in_sorted_pages(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    user_ids = [f"u{number:02d}" for number in range(7)]
    with unit_of_work_factory() as uow:
        uow.users.save_attributes({user_id: {} for user_id in reversed(user_ids)})
        first_page = uow.users.ids(limit=4)
        second_page = uow.users.ids(after=first_page[-1], limit=4)

    assert first_page + second_page == user_ids


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"pooled_sum": np.array([1.0, np.inf], dtype=np.float32)}, "pooled_sum has values"),
        ({"profile": np.zeros((2, 3))}, "profile must be one-dimensional"),
        ({"model_version": None}, "model_version is unset"),
    ],
)
def test_an_unfit_state_is_refused_and_nothing_is_written(
    unit_of_work_factory: UnitOfWorkFactory,
    model_version: int,
    change: dict[str, object],
    reason: str,
) -> None:
    bad = _profile("u_bad", model_version, seed=3)
    for name, value in change.items():
        setattr(bad, name, value)
    with unit_of_work_factory() as uow, pytest.raises(InvalidRecordError, match=reason):
        uow.users.save_many([_profile("u_good", model_version, seed=4), bad])

    with unit_of_work_factory() as uow:
        assert uow.users.count(model_version) == 0


# Interactions


def test_interactions_upsert_replaces_the_weight_and_the_last_of_a_batch_wins(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        uow.interactions.save_many([Interaction("u1", "i1", 0.5, "e1", "click", 10.0)])
        uow.interactions.save_many(
            [
                Interaction("u1", "i1", 1.0, "e2", "like", 11.0),
                Interaction("u1", "i1", -1.0, "e3", "dislike", 12.0),
                Interaction("u1", "i2", 0.3, "e4", "view", 12.5),
                Interaction("u2", "i1", 0.6, "e5", "rating", 13.0),
            ]
        )
        uow.commit()

    with unit_of_work_factory() as uow:
        pairs = uow.interactions.get_many([("u1", "i1"), ("u2", "i1"), ("u2", "i2")])
        by_user = uow.interactions.for_users(["u1", "u3"])

    assert pairs == {
        ("u1", "i1"): Interaction("u1", "i1", -1.0, "e3", "dislike", 12.0),
        ("u2", "i1"): Interaction("u2", "i1", 0.6, "e5", "rating", 13.0),
    }
    assert by_user == {
        "u1": [
            Interaction("u1", "i1", -1.0, "e3", "dislike", 12.0),
            Interaction("u1", "i2", 0.3, "e4", "view", 12.5),
        ]
    }


def test_interactions_are_counted_since_a_write_time_and_users_paged(
    engine_clock_factory: Callable[[float], UnitOfWork],
) -> None:
    with engine_clock_factory(100.0) as uow:
        uow.interactions.save_many([Interaction("u2", "i1", 0.5, "e1", "click", 1.0)])
        uow.commit()
    with engine_clock_factory(200.0) as uow:
        uow.interactions.save_many(
            [
                Interaction("u1", "i1", 0.5, "e2", "click", 2.0),
                Interaction("u3", "i1", 0.5, "e3", "click", 3.0),
            ]
        )
        uow.commit()

    with engine_clock_factory(300.0) as uow:
        counts = (uow.interactions.count(), uow.interactions.count(updated_after=150.0))
        pages = (uow.interactions.user_ids(limit=2), uow.interactions.user_ids(after="u2"))

    assert counts == (3, 2)
    assert pages == (["u1", "u2"], ["u3"])


@pytest.fixture
def engine_clock_factory(engine: Engine) -> Callable[[float], UnitOfWork]:
    """Units of work whose clock stands still at the given time."""
    return lambda now: UnitOfWork(engine, clock=lambda: now)


# Cluster statistics


def _deltas(seed: int, count: int) -> tuple[list[ClusterItemDelta], list[ClusterMassDelta]]:
    random = np.random.default_rng(seed)
    item_deltas = [
        ClusterItemDelta(
            cluster=int(random.integers(0, 3)),
            item_id=f"i{random.integers(0, 6)}",
            liked_mass=float(random.uniform(0, 1)),
            rated_mass=float(random.uniform(0, 1)),
            weighted_sum=float(random.uniform(-1, 1)),
        )
        for _ in range(count)
    ]
    mass_deltas = [
        ClusterMassDelta(int(random.integers(0, 3)), float(random.uniform(-1, 1)))
        for _ in range(count)
    ]
    return item_deltas, mass_deltas


def _statistics(
    uow: UnitOfWork, version: int
) -> tuple[dict[int, list[ClusterItemStatistics]], dict[int, float]]:
    top = {cluster: uow.clusters.top_items(version, cluster, limit=100) for cluster in range(3)}
    return top, uow.clusters.masses(version)


def test_cluster_deltas_commute(unit_of_work_factory: UnitOfWorkFactory) -> None:
    first, second = _deltas(seed=1, count=40), _deltas(seed=2, count=40)
    with unit_of_work_factory() as uow:
        in_order, reversed_order = uow.models.add(_model()), uow.models.add(_model())
        for version, batches in ((in_order, (first, second)), (reversed_order, (second, first))):
            for item_deltas, mass_deltas in batches:
                uow.clusters.add_deltas(version, item_deltas, mass_deltas)
        uow.commit()

    with unit_of_work_factory() as uow:
        assert _statistics(uow, in_order) == _statistics(uow, reversed_order)
        masses = uow.clusters.masses(in_order)
    expected_masses = {
        cluster: math.fsum(d.mass for d in first[1] + second[1] if d.cluster == cluster)
        for cluster in range(3)
    }
    assert masses == pytest.approx(expected_masses, abs=1e-12)


def test_delta_columns_add_up_like_the_same_deltas_given_one_by_one(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    item_deltas, mass_deltas = _deltas(seed=3, count=60)
    summed_items, summed_masses = aggregate_deltas(item_deltas, mass_deltas)
    with unit_of_work_factory() as uow:
        by_delta, by_column = uow.models.add(_model()), uow.models.add(_model())
        uow.clusters.add_deltas(by_delta, item_deltas, mass_deltas)
        for _ in range(2):  # the second time, every row exists and is added to
            uow.clusters.add_delta_columns(
                by_column,
                clusters=np.array([delta.cluster for delta in summed_items]),
                item_ids=[delta.item_id for delta in summed_items],
                liked=np.array([delta.liked_mass for delta in summed_items]),
                rated=np.array([delta.rated_mass for delta in summed_items]),
                weighted=np.array([delta.weighted_sum for delta in summed_items]),
                mass_clusters=np.array([delta.cluster for delta in summed_masses]),
                mass_changes=np.array([delta.mass for delta in summed_masses]),
            )
        uow.clusters.add_deltas(by_delta, item_deltas, mass_deltas)
        uow.commit()

    with unit_of_work_factory() as uow:
        expected_top, expected_masses = _statistics(uow, by_delta)
        top, masses = _statistics(uow, by_column)
    assert masses == pytest.approx(expected_masses, abs=1e-12)
    assert top.keys() == expected_top.keys()
    for cluster, rows in top.items():
        assert [row.item_id for row in rows] == [row.item_id for row in expected_top[cluster]]
        assert [value for row in rows for value in row[1:]] == pytest.approx(
            [value for row in expected_top[cluster] for value in row[1:]], abs=1e-12
        )


def test_delta_columns_that_are_not_finite_are_refused(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow, pytest.raises(InvalidRecordError, match="not finite"):
        uow.clusters.add_delta_columns(
            model_version,
            clusters=np.array([0]),
            item_ids=["i"],
            liked=np.array([1.0]),
            rated=np.array([math.inf]),
            weighted=np.array([0.0]),
            mass_clusters=np.array([0]),
            mass_changes=np.array([1.0]),
        )


def test_awkward_ids_and_bytes_round_trip_through_the_set_based_upserts(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    # Each value travels inside a PostgreSQL array literal: quotes, backslashes, commas,
    # braces, spaces, the word NULL and non-ASCII must all come back unchanged.
    awkward = ['say "hi"', "back\\slash", "a,b", "{x}", " padded ", "NULL", "", "é∂ü"]
    with unit_of_work_factory() as uow:
        uow.interactions.save_many(
            [
                Interaction(user_id, item_id, 0.25, f"e-{user_id}-{item_id}", "click", 1.0)
                for user_id in awkward
                for item_id in awkward[:3]
            ]
        )
        profiles = [
            dataclasses.replace(_profile(user_id, model_version, seed), attributes={})
            for seed, user_id in enumerate(awkward)
        ]
        profiles[0].pooled_sum[:] = np.frombuffer(b'\\x00\\\\"{,}' * 4, dtype=np.float32)[:8]
        uow.users.save_many(profiles)
        uow.commit()

    # The lookups by many keys bind them as one array literal on PostgreSQL (is_one_of).
    looked_up = [*awkward, "not stored"]
    with unit_of_work_factory() as uow:
        stored = uow.interactions.for_users(looked_up)
        states = uow.users.get_many(looked_up, model_version)
        tokens = uow.users.state_tokens(looked_up, model_version)
        attributes = uow.users.attributes_many(looked_up)
    assert sorted(stored) == sorted(awkward)
    assert sorted(states) == sorted(tokens) == sorted(attributes) == sorted(awkward)
    # (Compared as sets: the database's collation may order such strings unlike Python.)
    assert all({row.item_id for row in rows} == set(awkward[:3]) for rows in stored.values())
    for profile in profiles:
        assert states[profile.user_id].pooled_sum.tobytes() == profile.pooled_sum.tobytes()
        assert states[profile.user_id].top_clusters == profile.top_clusters


def test_concurrent_writers_add_up_instead_of_overwriting(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    delta = [ClusterItemDelta(1, "i1", 0.25, 0.5, 0.125)]
    second_writer_error: list[BaseException] = []

    def second_writer() -> None:
        try:
            with unit_of_work_factory() as uow:
                uow.clusters.add_deltas(model_version, delta, [ClusterMassDelta(1, 1.0)])
                uow.commit()
        except BaseException as error:
            second_writer_error.append(error)

    with unit_of_work_factory() as uow:
        uow.clusters.add_deltas(model_version, delta, [ClusterMassDelta(1, 2.0)])
        # The second writer starts while this transaction holds its rows, and must wait.
        writer = threading.Thread(target=second_writer)
        writer.start()
        writer.join(timeout=0.5)
        uow.commit()
    writer.join(timeout=30)

    assert not writer.is_alive() and second_writer_error == []
    with unit_of_work_factory() as uow:
        top = uow.clusters.top_items(model_version, 1, limit=5)
        masses = uow.clusters.masses(model_version)
    assert [tuple(statistics) for statistics in top] == [("i1", 0.5, 1.0, 0.25)]
    assert masses == {1: 3.0}


def test_top_items_are_the_largest_rated_masses_of_one_cluster(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    rated = {"a": 0.2, "b": 0.9, "c": 0.5, "d": 0.5}
    with unit_of_work_factory() as uow:
        uow.clusters.add_deltas(
            model_version,
            # Liked masses in the opposite order: the ranking must follow the rated ones.
            [ClusterItemDelta(0, item, 1.0 - mass, mass, mass) for item, mass in rated.items()]
            + [ClusterItemDelta(1, "z", 5.0, 5.0, 1.0)],
        )
        top = uow.clusters.top_items(model_version, cluster=0, limit=3)
        clusters = uow.clusters.clusters(model_version)

    assert [statistics.item_id for statistics in top] == ["b", "c", "d"]
    assert [statistics.rated_mass for statistics in top] == [0.9, 0.5, 0.5]
    assert clusters == [0, 1]


def test_top_items_of_many_clusters_are_each_clusters_own(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    item_deltas, _ = _deltas(seed=3, count=60)
    with unit_of_work_factory() as uow:
        uow.clusters.add_deltas(model_version, item_deltas, [])
        # Ties of rated mass across and within clusters: broken by item id in each.
        uow.clusters.add_deltas(
            model_version,
            [ClusterItemDelta(c, f"t{c}{n}", 0.0, 7.0, 0.0) for c in (0, 2) for n in (2, 1)],
        )
        one_by_one = {
            cluster: uow.clusters.top_items(model_version, cluster, 4) for cluster in range(3)
        }
        together = uow.clusters.top_items_by_cluster(model_version, [2, 0, 1, 9, 0], 4)

    assert together == one_by_one  # cluster 9 has no statistics: absent
    assert [item.item_id for item in together[0][:2]] == ["t01", "t02"]
    assert all(len(items) == 4 for items in together.values())


def test_a_delta_that_is_not_finite_is_refused(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow, pytest.raises(InvalidRecordError, match="not finite"):
        uow.clusters.add_deltas(model_version, [ClusterItemDelta(0, "i", math.nan, 1.0, 0.0)])


def test_shortlists_are_replaced_per_cluster_and_deleted_with_their_version(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow:
        other_version = uow.models.add(_model())
        uow.clusters.save_shortlists(model_version, {0: [("a", 0.5)], 1: [("b", 0.25)]})
        uow.clusters.save_shortlists(model_version, {0: [("c", 0.75), ("a", 0.5)]})
        uow.clusters.save_shortlists(other_version, {0: [("x", 1.0)]})
        uow.clusters.add_deltas(other_version, *_deltas(seed=3, count=5))
        uow.commit()

    with unit_of_work_factory() as uow:
        everything = uow.clusters.shortlists(model_version)
        some = uow.clusters.shortlists(model_version, clusters=[1, 7])
        uow.clusters.delete_version(other_version)
        after_delete = (
            uow.clusters.shortlists(other_version),
            uow.clusters.masses(other_version),
            uow.clusters.clusters(other_version),
        )

    assert everything == {0: [("c", 0.75), ("a", 0.5)], 1: [("b", 0.25)]}
    assert some == {1: [("b", 0.25)]}
    assert after_delete == ({}, {}, [])


# Offsets


def test_offsets_are_kept_per_group_topic_and_partition(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        uow.offsets.save("consumers", "interactions", {0: 10, 1: 20})
        uow.offsets.save("consumers", "interactions", {1: 25, 2: 3})
        uow.offsets.save("consumers", "items", {0: 99})
        uow.offsets.save("other-group", "interactions", {0: 1})
        uow.commit()

    with unit_of_work_factory() as uow:
        assert uow.offsets.get("consumers", "interactions") == {0: 10, 1: 25, 2: 3}
        assert uow.offsets.get("consumers", "unknown") == {}


def test_a_partition_resumes_where_its_outputs_were_last_acknowledged(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        uow.offsets.save("consumers", "interactions", {0: 10, 1: 20})
        uow.offsets.acknowledge("consumers", "interactions", {0: 10, 1: 15})
        uow.offsets.save("consumers", "interactions", {0: 30})  # stored, not yet acknowledged
        uow.offsets.acknowledge("consumers", "interactions", {1: 12})  # late: never backwards
        uow.offsets.acknowledge("consumers", "interactions", {7: 99})  # nothing stored: no row
        uow.commit()

    with unit_of_work_factory() as uow:
        assert uow.offsets.resume_offsets("consumers", "interactions") == {0: 10, 1: 15}
        assert uow.offsets.get("consumers", "interactions") == {0: 30, 1: 20}


def test_claim_returns_the_stored_offsets_and_starts_missing_partitions_at_zero(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        uow.offsets.save("consumers", "interactions", {1: 40})
        assert uow.offsets.claim("consumers", "interactions", [2, 1]) == {1: 40, 2: 0}
        uow.commit()


@pytest.mark.postgres
def test_a_second_claim_waits_for_the_first_and_sees_its_offsets(
    unit_of_work_factory: UnitOfWorkFactory, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are a PostgreSQL matter; SQLite has a single writer")
    seen_by_second: dict[int, int] = {}
    second_started = threading.Event()

    def second_claimant() -> None:
        with unit_of_work_factory() as uow:
            second_started.set()
            seen_by_second.update(uow.offsets.claim("consumers", "interactions", [0]))
            uow.commit()

    with unit_of_work_factory() as first:
        assert first.offsets.claim("consumers", "interactions", [0]) == {0: 0}
        second = threading.Thread(target=second_claimant)
        second.start()
        second_started.wait(timeout=10)
        second.join(timeout=1.0)
        assert second.is_alive(), "the second claim did not wait for the first transaction"
        first.offsets.save("consumers", "interactions", {0: 17})
        first.commit()
    second.join(timeout=10)
    assert seen_by_second == {0: 17}


def test_a_negative_offset_is_refused(unit_of_work_factory: UnitOfWorkFactory) -> None:
    with unit_of_work_factory() as uow, pytest.raises(InvalidRecordError, match="partition 0"):
        uow.offsets.save("consumers", "interactions", {0: -1})


# Dead letters


def test_dead_letters_keep_the_original_bytes_and_are_counted_by_reason(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    undecodable = b"\xff\xfe\x00{not json"
    letters = [
        DeadLetter("interactions", undecodable, "invalid_json", "line 1", 2, 41, b"\x00u1", 5.0),
        DeadLetter("interactions", b"{}", "missing_field", "user_id is required", 2, 42),
        DeadLetter("items", b"{}", "missing_field", "item_id is required"),
    ]
    with unit_of_work_factory() as uow:
        assert uow.dead_letters.add_many(letters) == 3
        uow.commit()

    with unit_of_work_factory() as uow:
        counts = uow.dead_letters.counts_by_reason()
        invalid_json = uow.dead_letters.recent(reason="invalid_json")
        newest = uow.dead_letters.recent(limit=1)

    assert counts == {"invalid_json": 1, "missing_field": 2}
    assert len(invalid_json) == 1
    assert (invalid_json[0].payload, invalid_json[0].key) == (undecodable, b"\x00u1")
    assert (invalid_json[0].source_partition, invalid_json[0].source_offset) == (2, 41)
    assert newest[0].source_topic == "items" and newest[0].received_at is not None


# Model registry


def _active_versions(uow: UnitOfWork) -> list[int | None]:
    return [model.version for model in uow.models.list() if model.status is ModelStatus.ACTIVE]


def test_a_model_round_trips_with_its_weights(unit_of_work_factory: UnitOfWorkFactory) -> None:
    weights = bytes(range(256)) * 4
    model = ModelVersion(
        version=None,
        status=ModelStatus.CANDIDATE,
        config={"clusters": 8, "head": "sigmoid"},
        weights=weights,
        metrics={"precision_at_20": 0.25},
        data_window={"from": 1.0, "to": 2.0},
        reason="scheduled fine-tune",
        created_at=123.5,
    )
    with unit_of_work_factory() as uow:
        version = uow.models.add(model)
        uow.commit()

    with unit_of_work_factory() as uow:
        loaded = uow.models.get(version)
        listed = uow.models.list()
        missing = uow.models.get(version + 1)

    assert loaded == dataclasses.replace(model, version=version)
    assert [(entry.version, entry.weights) for entry in listed] == [(version, b"")]
    assert missing is None


def test_activation_keeps_exactly_one_active_version(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        first = uow.models.add(_model(ModelStatus.ACTIVE))
        second = uow.models.add(_model())
        third = uow.models.add(_model(ModelStatus.ACTIVE))
        after_adding = _active_versions(uow)
        replaced = uow.models.activate(second, reason="scored better")
        uow.commit()

    with unit_of_work_factory() as uow:
        statuses = {model.version: model.status for model in uow.models.list()}
        active = uow.models.active()

    assert after_adding == [third]
    assert replaced == third
    assert statuses == {
        first: ModelStatus.RETIRED,
        second: ModelStatus.ACTIVE,
        third: ModelStatus.RETIRED,
    }
    assert active is not None and active.weights == b"weights" and active.promoted_at is not None
    assert active.reason == "scored better"


def test_the_database_itself_refuses_a_second_active_version(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow:
        candidate = uow.models.add(_model())
        uow.commit()

    with unit_of_work_factory() as uow, pytest.raises(IntegrityError):
        # Bypasses the repository on purpose: the constraint must hold for any writer.
        uow.models._connection.execute(
            text("UPDATE model_versions SET status = 'active' WHERE version = :version"),
            {"version": candidate},
        )


def test_activating_an_unknown_version_fails_and_changes_nothing(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow, pytest.raises(UnknownModelVersionError, match="999"):
        uow.models.activate(999)

    with unit_of_work_factory() as uow:
        assert uow.models.active_version() == model_version


def test_set_status_records_the_reason_and_routes_active_through_activation(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow:
        rejected = uow.models.add(_model())
        promoted = uow.models.add(_model())
        uow.models.set_status(rejected, ModelStatus.REJECTED, reason="P@20 fell by 0.03")
        uow.models.set_status(promoted, ModelStatus.ACTIVE)
        uow.commit()

    with unit_of_work_factory() as uow:
        loaded = uow.models.get(rejected)
        assert loaded is not None
        assert (loaded.status, loaded.reason) == (ModelStatus.REJECTED, "P@20 fell by 0.03")
        assert _active_versions(uow) == [promoted]
        with pytest.raises(UnknownModelVersionError):
            uow.models.set_status(999, ModelStatus.RETIRED)


# Training runs


def test_training_runs_are_logged_from_start_to_outcome(
    unit_of_work_factory: UnitOfWorkFactory, model_version: int
) -> None:
    with unit_of_work_factory() as uow:
        drift_run = uow.training_runs.start(TrainingTrigger.DRIFT, started_at=10.0)
        scheduled_run = uow.training_runs.start("schedule", parent_version=model_version)
        uow.training_runs.finish(
            scheduled_run,
            "rejected",
            reason="scored worse",
            metrics={"precision_at_20": 0.1},
            candidate_version=model_version,
        )
        uow.commit()

    with unit_of_work_factory() as uow:
        finished = uow.training_runs.get(scheduled_run)
        latest_drift = uow.training_runs.latest(TrainingTrigger.DRIFT)
        latest = uow.training_runs.latest()

    assert finished is not None and finished.finished_at is not None
    assert (finished.trigger, finished.outcome, finished.metrics) == (
        TrainingTrigger.SCHEDULE,
        "rejected",
        {"precision_at_20": 0.1},
    )
    assert (finished.parent_version, finished.candidate_version) == (model_version, model_version)
    assert latest_drift is not None and latest_drift.id == drift_run
    assert latest_drift.outcome is None
    assert latest is not None and latest.id == scheduled_run


def test_an_unknown_trigger_or_run_is_refused(unit_of_work_factory: UnitOfWorkFactory) -> None:
    with unit_of_work_factory() as uow:
        with pytest.raises(InvalidRecordError, match="unknown training trigger 'cron'"):
            uow.training_runs.start("cron")
        with pytest.raises(InvalidRecordError, match="run 404 was never started"):
            uow.training_runs.finish(404, "failed")
