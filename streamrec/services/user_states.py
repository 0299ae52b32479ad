"""Moving touched users' derived state over one batch, under one model version.

A user with a stored state is updated incrementally: each changed weight subtracts its old
term from the pooled sum and adds the new one (O(d) per change, never a pass over the user's
items). A user without a state under this version (new, or stored before the version became
active) is pooled once from their whole interaction set. Then all touched users are encoded in
one batch: profile and top-M memberships.

>>> from streamrec.config import ModelSettings
>>> from streamrec.model.efficientrec import EfficientRec
>>> from streamrec.model.features import FeatureSchema
>>> from streamrec.services.model_cache import ServingModel
>>> settings = ModelSettings(hash_buckets=64, item_dim=4, profile_dim=4, hidden_dim=8,
...                          clusters=3, feature_buckets=32)
>>> serving = ServingModel(1, EfficientRec.new(settings, FeatureSchema()))
>>> change = UserChangeSet("u1", None, {}, {"i1": 1.0, "i2": 0.0}, {}, last_event_at=5.0)
>>> [update] = update_user_states(serving, [change], top_memberships=2,
...                               load_features=lambda ids: {})
>>> # Under the default "shifted" pooling a weight of 0 still counts: (1 + 0) / 2 = 0.5.
>>> update.after.nonzero_count, update.after.interaction_count, len(update.after.top_clusters)
(2, 2, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamrec.model.efficientrec import EfficientRec
from streamrec.model.memberships import as_pairs
from streamrec.model.memberships import top_memberships as strongest_memberships
from streamrec.model.pooling import apply_coefficient_changes, full_pooled_sum
from streamrec.services.model_cache import FeatureLoader, ServingModel
from streamrec.state import UserProfile

Weights = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class UserChangeSet:
    """One user's situation over a batch: the stored state under the serving version (None
    if there is none yet), the weights of their items before and after the batch, and their
    demographics."""

    user_id: str
    stored_state: UserProfile | None
    weights_before: Weights
    weights_after: Weights
    attributes: Mapping[str, str]
    last_event_at: float | None


@dataclass(frozen=True, slots=True)
class UserStateUpdate:
    """A user's state before (None: the user never counted under this version) and after."""

    before: UserProfile | None
    after: UserProfile
    weights_before: Weights
    weights_after: Weights


def update_user_states(
    serving: ServingModel,
    change_sets: Sequence[UserChangeSet],
    top_memberships: int,
    load_features: FeatureLoader,
) -> list[UserStateUpdate]:
    """The new state of every user in ``change_sets``, encoded in one batch."""
    if not change_sets:
        return []
    changed_items = [
        None if change.stored_state is None else _changed_items(change) for change in change_sets
    ]
    needed: set[str] = set()
    for change, changed in zip(change_sets, changed_items, strict=True):
        needed.update(change.weights_after if changed is None else changed)
    vectors = serving.item_vectors(needed, load_features)
    sums, counts = _pooled_sums_after(
        change_sets, changed_items, serving.model, vectors, serving.model.architecture.item_dim
    )
    encoded = serving.model.encode_pooled_sums(
        sums, counts, [dict(change.attributes) for change in change_sets]
    )
    clusters, values = strongest_memberships(encoded.memberships, top_memberships)
    updates = []
    memberships = as_pairs(clusters, values)
    for row, (change, pairs) in enumerate(zip(change_sets, memberships, strict=True)):
        after = UserProfile(
            user_id=change.user_id,
            pooled_sum=sums[row].copy(),
            nonzero_count=int(counts[row]),
            interaction_count=len(change.weights_after),
            attributes=dict(change.attributes),
            profile=encoded.profiles[row].astype(np.float32),
            top_clusters=pairs,
            model_version=serving.version,
            last_event_at=change.last_event_at,
        )
        updates.append(
            UserStateUpdate(change.stored_state, after, change.weights_before, change.weights_after)
        )
    return updates


def _changed_items(change: UserChangeSet) -> list[str]:
    before, after = change.weights_before, change.weights_after
    return sorted(
        item_id
        for item_id in before.keys() | after.keys()
        if before.get(item_id) != after.get(item_id)
    )


def _pooled_sums_after(
    change_sets: Sequence[UserChangeSet],
    changed_items: Sequence[list[str] | None],
    model: EfficientRec,
    vectors: Mapping[str, np.ndarray],
    dimension: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(s_u, n_u) of every user after the batch. Users with a stored state move by their
    changed terms, all in one ``apply_coefficient_changes`` (it adds each row's terms in the
    order given, so the result is the same as one call per user); users without one are
    pooled from their whole interaction set."""
    sums = np.zeros((len(change_sets), dimension), dtype=np.float32)
    counts = np.zeros(len(change_sets), dtype=np.int64)
    rows: list[int] = []
    items: list[str] = []
    old_weights: list[float] = []
    new_weights: list[float] = []
    for row, (change, changed) in enumerate(zip(change_sets, changed_items, strict=True)):
        if changed is None:
            sums[row], counts[row] = _pooled_from_scratch(change, model, vectors, dimension)
            continue
        state = change.stored_state
        assert state is not None  # changed_items is None exactly for users without a state
        sums[row], counts[row] = state.pooled_sum, state.nonzero_count
        before, after = change.weights_before, change.weights_after
        for item_id in changed:
            rows.append(row)
            items.append(item_id)
            old_weights.append(before.get(item_id, np.nan))
            new_weights.append(after.get(item_id, np.nan))
    if not rows:
        return sums, counts
    moved = np.unique(rows)
    local_rows = np.searchsorted(moved, rows)
    moved_sums, moved_counts = apply_coefficient_changes(
        sums[moved],
        counts[moved],
        local_rows,
        np.stack([vectors[item_id] for item_id in items]),
        model.pooling_coefficients(np.array(old_weights, dtype=np.float32)),
        model.pooling_coefficients(np.array(new_weights, dtype=np.float32)),
    )
    sums[moved], counts[moved] = moved_sums, moved_counts
    return sums, counts


def _pooled_from_scratch(
    change: UserChangeSet, model: EfficientRec, vectors: Mapping[str, np.ndarray], dimension: int
) -> tuple[np.ndarray, int]:
    if not change.weights_after:
        return np.zeros(dimension, dtype=np.float32), 0
    item_ids = sorted(change.weights_after)
    weights = np.array([change.weights_after[item_id] for item_id in item_ids])
    return full_pooled_sum(
        np.stack([vectors[item_id] for item_id in item_ids]),
        model.pooling_coefficients(weights),
    )
