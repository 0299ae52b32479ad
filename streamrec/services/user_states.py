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
    needed: set[str] = set()
    for change in change_sets:
        if change.stored_state is None:
            needed.update(change.weights_after)
        else:
            needed.update(_changed_items(change))
    vectors = serving.item_vectors(needed, load_features)
    dimension = serving.model.architecture.item_dim
    sums = np.zeros((len(change_sets), dimension), dtype=np.float32)
    counts = np.zeros(len(change_sets), dtype=np.int64)
    for row, change in enumerate(change_sets):
        sums[row], counts[row] = _pooled_after(change, serving.model, vectors, dimension)
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


def _pooled_after(
    change: UserChangeSet, model: EfficientRec, vectors: Mapping[str, np.ndarray], dimension: int
) -> tuple[np.ndarray, int]:
    if change.stored_state is None:
        if not change.weights_after:
            return np.zeros(dimension, dtype=np.float32), 0
        item_ids = sorted(change.weights_after)
        weights = np.array([change.weights_after[item_id] for item_id in item_ids])
        return full_pooled_sum(
            np.stack([vectors[item_id] for item_id in item_ids]),
            model.pooling_coefficients(weights),
        )
    changed = _changed_items(change)
    state = change.stored_state
    if not changed:
        return state.pooled_sum, state.nonzero_count
    sums, counts = apply_coefficient_changes(
        state.pooled_sum[None, :],
        np.array([state.nonzero_count]),
        np.zeros(len(changed), dtype=np.int64),
        np.stack([vectors[item_id] for item_id in changed]),
        model.pooling_coefficients(_weights_of(change.weights_before, changed)),
        model.pooling_coefficients(_weights_of(change.weights_after, changed)),
    )
    return sums[0], int(counts[0])


def _weights_of(weights: Weights, item_ids: Sequence[str]) -> np.ndarray:
    """The weights of ``item_ids``, NaN for an item the user has no interaction with."""
    return np.array([weights.get(item_id, np.nan) for item_id in item_ids], dtype=np.float32)
