"""A comparable picture of the stored state: interactions, demographics, user states, cluster
statistics.

The pipeline promises that a crash, a replay, a duplicate or a second consumer never changes
the final state. A snapshot makes that checkable: take one after each run and compare them
(vectors and statistics within a float tolerance, since additions in another order round
differently). It reads everything, so it is for tests and audits, not for large databases.

>>> from streamrec.storage.memory import create_memory_database
>>> from streamrec.storage.unit_of_work import UnitOfWork
>>> from streamrec.state import Interaction
>>> engine = create_memory_database()
>>> with UnitOfWork(engine) as uow:
...     _ = uow.interactions.save_many([Interaction("u1", "i1", 0.5, "e1", "click", 1.0)])
...     first = take_snapshot(uow)
...     _ = uow.interactions.save_many([Interaction("u1", "i1", 1.0, "e2", "like", 2.0)])
...     differences(first, take_snapshot(uow))
["interaction ('u1', 'i1'): (0.5, 'e1', 'click', 1.0) != (1.0, 'e2', 'like', 2.0)"]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from streamrec.storage.unit_of_work import UnitOfWork

# Pages of ids read at a time.
PAGE_SIZE = 1_000
# Far above any cluster's number of items in a test or an audit.
ALL_ITEMS = 10**9


UserStateValues = tuple[np.ndarray, int, int, dict[int, float], float | None, float | None]


@dataclass
class StateSnapshot:
    """Everything the pipeline derives from the stream, under one model version (if any)."""

    model_version: int | None
    interactions: dict[tuple[str, str], tuple[float, str, str, float]] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    # pooled sum, non-zero count, interaction count, memberships, and with recency-weighted
    # pooling the weighted count and the reference time (None without).
    user_states: dict[str, UserStateValues] = field(default_factory=dict)
    item_statistics: dict[tuple[int, str], tuple[float, float, float]] = field(default_factory=dict)
    masses: dict[int, float] = field(default_factory=dict)


def take_snapshot(uow: UnitOfWork, model_version: int | None = None) -> StateSnapshot:
    """Read the state under ``model_version`` (default: the active version)."""
    version = uow.models.active_version() if model_version is None else model_version
    snapshot = StateSnapshot(version)
    for user_ids in _pages(uow.interactions.user_ids):
        for rows in uow.interactions.for_users(user_ids).values():
            for row in rows:
                snapshot.interactions[(row.user_id, row.item_id)] = (
                    row.weight,
                    row.event_id,
                    row.event_type,
                    row.timestamp,
                )
    for user_ids in _pages(uow.users.ids):
        snapshot.attributes.update(uow.users.attributes_many(user_ids))
    if version is None:
        return snapshot
    for user_ids in _pages(uow.users.ids):
        for user_id, state in uow.users.get_many(user_ids, version).items():
            snapshot.user_states[user_id] = (
                state.pooled_sum,
                state.nonzero_count,
                state.interaction_count,
                dict(state.top_clusters),
                state.weighted_count,
                state.pooling_reference_time,
            )
    for cluster in uow.clusters.clusters(version):
        for item in uow.clusters.top_items(version, cluster, ALL_ITEMS):
            snapshot.item_statistics[(cluster, item.item_id)] = (
                item.liked_mass,
                item.rated_mass,
                item.weighted_sum,
            )
    snapshot.masses = uow.clusters.masses(version)
    return snapshot


def differences(first: StateSnapshot, second: StateSnapshot, tolerance: float = 1e-5) -> list[str]:
    """Every difference between two snapshots, one line each (empty when they agree)."""
    found: list[str] = []
    # Version numbers are not compared: two databases number the same model differently.
    if (first.model_version is None) != (second.model_version is None):
        found.append(f"model version: {first.model_version} != {second.model_version}")
    for key in sorted(first.interactions.keys() | second.interactions.keys()):
        left, right = first.interactions.get(key), second.interactions.get(key)
        if left != right:
            found.append(f"interaction {key}: {left} != {right}")
    for user_id in sorted(first.attributes.keys() | second.attributes.keys()):
        left_attributes = first.attributes.get(user_id, {})
        right_attributes = second.attributes.get(user_id, {})
        if left_attributes != right_attributes:
            found.append(f"user {user_id}: attributes {left_attributes} != {right_attributes}")
    for user_id in sorted(first.user_states.keys() | second.user_states.keys()):
        left_state, right_state = first.user_states.get(user_id), second.user_states.get(user_id)
        if left_state is None or right_state is None:
            side = "second" if left_state is None else "first"
            found.append(f"user {user_id}: state only in the {side} snapshot")
            continue
        if not _states_agree(left_state, right_state, tolerance):
            found.append(f"user {user_id}: state {left_state} != {right_state}")
    found += _compare_values(
        "cluster statistics", first.item_statistics, second.item_statistics, tolerance
    )
    found += _compare_values(
        "cluster mass",
        {cluster: (mass,) for cluster, mass in first.masses.items()},
        {cluster: (mass,) for cluster, mass in second.masses.items()},
        tolerance,
    )
    return found


def _states_agree(left: UserStateValues, right: UserStateValues, tolerance: float) -> bool:
    left_sum, left_nonzero, left_count, left_clusters, left_weighted, left_reference = left
    right_sum, right_nonzero, right_count, right_clusters, right_weighted, right_reference = right
    return (
        (left_nonzero, left_count, left_reference) == (right_nonzero, right_count, right_reference)
        and _optional_close(left_weighted, right_weighted, tolerance)
        and bool(np.allclose(left_sum, right_sum, atol=tolerance, rtol=0.0))
        and left_clusters.keys() == right_clusters.keys()
        and all(
            math.isclose(left_clusters[c], right_clusters[c], abs_tol=tolerance)
            for c in left_clusters
        )
    )


def _optional_close(left: float | None, right: float | None, tolerance: float) -> bool:
    if left is None or right is None:
        return left is right
    return math.isclose(left, right, abs_tol=tolerance)


def _compare_values(
    what: str,
    first: dict[object, tuple[float, ...]],
    second: dict[object, tuple[float, ...]],
    tolerance: float,
) -> list[str]:
    found = []
    for key in sorted(first.keys() | second.keys(), key=repr):
        # A key absent on one side counts as zeros: an additive statistic that returned to 0.
        left = first.get(key) or (0.0,) * len(second[key])
        right = second.get(key) or (0.0,) * len(left)
        if not all(math.isclose(a, b, abs_tol=tolerance) for a, b in zip(left, right, strict=True)):
            found.append(f"{what} {key}: {left} != {right}")
    return found


def _pages(read_page: Callable[..., list[str]]) -> Iterator[list[str]]:
    after = None
    while True:
        page = read_page(after=after, limit=PAGE_SIZE)
        if not page:
            return
        yield page
        after = page[-1]
