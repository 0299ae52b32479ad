"""The batched cluster deltas equal the model's per-user deltas, summed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.model.contributions import UserContribution, aggregate_deltas, contribution_deltas
from streamrec.services.batch_deltas import batch_contribution_deltas

memberships = st.lists(
    st.tuples(st.integers(0, 6), st.floats(0.0, 1.0)), max_size=3, unique_by=lambda pair: pair[0]
)
weights = st.dictionaries(
    st.sampled_from([f"i{number}" for number in range(8)]),
    st.sampled_from([-1.0, -0.5, 0.0, 0.25, 1.0]),
    max_size=6,
)
contributions = st.builds(
    lambda clusters, items: UserContribution(tuple(clusters), items), memberships, weights
)


@settings(max_examples=300, deadline=None)
@given(transitions=st.lists(st.tuples(contributions, contributions), max_size=6))
def test_batched_deltas_equal_the_sum_of_per_user_deltas(transitions: list) -> None:
    item_deltas, mass_deltas = [], []
    for old, new in transitions:
        items, masses = contribution_deltas(old, new)
        item_deltas += items
        mass_deltas += masses
    expected_items, expected_masses = aggregate_deltas(item_deltas, mass_deltas)
    items, masses = batch_contribution_deltas(transitions)

    def as_map(deltas: list) -> dict:
        return {
            (delta.cluster, delta.item_id): (delta.liked_mass, delta.rated_mass, delta.weighted_sum)
            for delta in deltas
        }

    expected_map, actual_map = as_map(expected_items), as_map(items)
    for key in expected_map.keys() | actual_map.keys():
        assert actual_map.get(key, (0.0,) * 3) == pytest.approx(
            expected_map.get(key, (0.0,) * 3), abs=1e-12
        )
    expected_mass = {delta.cluster: delta.mass for delta in expected_masses}
    actual_mass = {delta.cluster: delta.mass for delta in masses}
    for cluster in expected_mass.keys() | actual_mass.keys():
        assert actual_mass.get(cluster, 0.0) == pytest.approx(
            expected_mass.get(cluster, 0.0), abs=1e-12
        )
    assert [(d.cluster, d.item_id) for d in items] == sorted((d.cluster, d.item_id) for d in items)
