"""Cluster statistics: built in one batch == the stream of additive deltas, event by event."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.model.contributions import UserContribution, aggregate_deltas, contribution_deltas
from streamrec.model.decay import ForwardDecay
from streamrec.model.memberships import dense_top_memberships
from streamrec.state import ClusterItemDelta, ClusterMassDelta
from tests.fixtures.cluster_statistics import ClusterStatistics

CLUSTERS = 6
TOP = 3


def top_clusters_of(memberships: np.ndarray) -> tuple[tuple[int, float], ...]:
    dense = dense_top_memberships(memberships[None, :], TOP)[0]
    return tuple((int(c), float(dense[c])) for c in np.flatnonzero(dense))


# One event: (user, item, weight, the user's memberships after it).
Event = tuple[str, str, float, np.ndarray]


def stream_deltas(
    events: list[Event], decay: ForwardDecay | None
) -> tuple[list[tuple[ClusterItemDelta, ...]], list[tuple[ClusterMassDelta, ...]], dict]:
    """The deltas of each event in order (a later weight on a pair replaces the earlier one,
    and the user's memberships move to the event's), and each user's final state."""
    users: dict[str, UserContribution] = {}
    item_batches, mass_batches = [], []
    for step, (user_id, item_id, weight, memberships) in enumerate(events):
        timestamp = 1_000.0 + step * 3_600.0
        before = users.get(user_id, UserContribution((), {}))
        after = UserContribution(
            top_clusters=top_clusters_of(memberships),
            weights={**before.weights, item_id: weight},
            timestamps={**before.timestamps, item_id: timestamp},
            last_event_at=timestamp,
        )
        items, masses = contribution_deltas(before, after, decay)
        item_batches.append(tuple(items))
        mass_batches.append(tuple(masses))
        users[user_id] = after
    return item_batches, mass_batches, users


def replay(
    seed: int, decay: ForwardDecay | None
) -> tuple[list[tuple[ClusterItemDelta, ...]], list[tuple[ClusterMassDelta, ...]], dict]:
    """A random stream of 300 events; after each one the user's memberships move at random."""
    generator = np.random.default_rng(seed)
    events = [
        (
            f"u{generator.integers(8)}",
            f"i{generator.integers(15)}",
            float(generator.choice([-1.0, -0.5, 0.0, 0.5, 1.0])),
            generator.random(CLUSTERS),
        )
        for _ in range(300)
    ]
    return stream_deltas(events, decay)


def built_in_batch(
    users: dict[str, UserContribution], decay: ForwardDecay | None
) -> ClusterStatistics:
    statistics = ClusterStatistics(CLUSTERS, decay=decay)
    user_ids = sorted(users)
    item_ids = sorted({item for user in users.values() for item in user.weights})
    column = {item: index for index, item in enumerate(item_ids)}
    memberships = np.zeros((len(user_ids), CLUSTERS))
    rows, columns, weights, times = [], [], [], []
    for row, user_id in enumerate(user_ids):
        user = users[user_id]
        for cluster, membership in user.top_clusters:
            memberships[row, cluster] = membership
        for item, weight in user.weights.items():
            rows.append(row)
            columns.append(column[item])
            weights.append(weight)
            times.append(user.timestamps[item])
    statistics.add_users(
        memberships, np.array(rows), item_ids, np.array(columns), np.array(weights), np.array(times)
    )
    return statistics


def assert_same(first: ClusterStatistics, second: ClusterStatistics) -> None:
    """Equal statistics for every item either knows (an item one of them never saw counts as
    all zeros: a contribution of zero membership leaves no trace)."""
    items = sorted(set(first.item_ids) | set(second.item_ids))
    for name in ("liked", "rated", "weighted"):
        np.testing.assert_allclose(
            dense_columns(first, name, items),
            dense_columns(second, name, items),
            rtol=1e-9,
            atol=1e-9,
        )
    np.testing.assert_allclose(first.mass, second.mass, rtol=1e-9, atol=1e-9)


def dense_columns(statistics: ClusterStatistics, name: str, items: list[str]) -> np.ndarray:
    values = getattr(statistics, name)
    columns = np.zeros((statistics.clusters, len(items)))
    for position, item in enumerate(items):
        if item in statistics.item_index:
            columns[:, position] = values[:, statistics.item_index[item]]
    return columns


@pytest.mark.parametrize(
    "decay", [None, ForwardDecay(half_life_seconds=86_400.0, landmark=0.0)], ids=["plain", "decay"]
)
def test_the_stream_of_deltas_equals_the_batch_build(decay: ForwardDecay | None) -> None:
    item_batches, mass_batches, users = replay(seed=3, decay=decay)
    streamed = ClusterStatistics(CLUSTERS, decay=decay)
    for items, masses in zip(item_batches, mass_batches, strict=True):
        streamed.apply(items, masses)
    assert_same(streamed, built_in_batch(users, decay))


def test_deltas_commute_so_any_order_and_any_aggregation_gives_the_same_statistics() -> None:
    item_batches, mass_batches, users = replay(seed=5, decay=None)
    all_items = [delta for batch in item_batches for delta in batch]
    all_masses = [delta for batch in mass_batches for delta in batch]
    order = np.random.default_rng(0).permutation(len(all_items))
    shuffled = ClusterStatistics(CLUSTERS)
    shuffled.apply([all_items[index] for index in order], reversed(all_masses))
    aggregated = ClusterStatistics(CLUSTERS)
    aggregated.apply(*aggregate_deltas(all_items, all_masses))
    assert_same(shuffled, built_in_batch(users, None))
    assert_same(aggregated, built_in_batch(users, None))


def test_an_unchanged_user_produces_no_deltas_and_a_new_weight_only_its_item() -> None:
    user = UserContribution(((0, 0.8), (2, 0.2)), {"a": 1.0, "b": -0.5})
    assert contribution_deltas(user, user) == ([], [])
    changed = UserContribution(user.top_clusters, {"a": 1.0, "b": 0.5})
    items, masses = contribution_deltas(user, changed)
    assert {delta.item_id for delta in items} == {"b"}
    assert masses == []
    liked = {delta.cluster: delta.liked_mass for delta in items}
    assert liked == pytest.approx({0: 0.4, 2: 0.1})


def test_read_time_normalisation_makes_older_contributions_weigh_less() -> None:
    decay = ForwardDecay(half_life_seconds=10.0, landmark=0.0)
    statistics = ClusterStatistics(1, decay=decay)
    old = UserContribution(((0, 1.0),), {"old": 1.0}, {"old": 0.0}, last_event_at=0.0)
    new = UserContribution(((0, 1.0),), {"new": 1.0}, {"new": 10.0}, last_event_at=10.0)
    empty = UserContribution((), {})
    statistics.apply(*contribution_deltas(empty, old, decay))
    statistics.apply(*contribution_deltas(empty, new, decay))
    liked, _, _, mass = statistics.read(now=10.0)
    columns = statistics.columns_of(["old", "new"])
    assert liked[0, columns].tolist() == pytest.approx([0.5, 1.0])
    assert mass.tolist() == pytest.approx([1.5])


EVENTS = st.lists(
    st.tuples(
        st.sampled_from([f"u{user}" for user in range(4)]),
        st.sampled_from([f"i{item}" for item in range(6)]),
        st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]),
        st.lists(st.floats(0.0, 1.0), min_size=CLUSTERS, max_size=CLUSTERS).map(np.array),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(events=EVENTS, with_decay=st.booleans(), batch_size=st.integers(1, 8))
def test_any_event_sequence_streamed_in_any_batches_equals_the_batch_build(
    events: list[Event], with_decay: bool, batch_size: int
) -> None:
    """Changed ratings (a pair seen again) and membership moves (every event) included; the
    consumer aggregates a batch's deltas before applying them, as here."""
    decay = ForwardDecay(half_life_seconds=86_400.0, landmark=0.0) if with_decay else None
    item_batches, mass_batches, users = stream_deltas(events, decay)
    streamed = ClusterStatistics(CLUSTERS, decay=decay)
    for start in range(0, len(events), batch_size):
        streamed.apply(
            *aggregate_deltas(
                [delta for batch in item_batches[start : start + batch_size] for delta in batch],
                [delta for batch in mass_batches[start : start + batch_size] for delta in batch],
            )
        )
    assert_same(streamed, built_in_batch(users, decay))
