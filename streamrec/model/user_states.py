"""Moving touched users' derived state over one batch, under one model version.

A user with a stored state is updated incrementally: each changed weight subtracts its old
term from the pooled sum and adds the new one (O(d) per change, never a pass over the user's
items). A user without a state under this version (new, or stored before the version became
active) is pooled once from their whole interaction set. Then all touched users are encoded in
one batch: profile and top-M memberships.

With recency-weighted pooling (``pooling_half_life_seconds``) each term and its count
contribution carry the factor 2^(-(t_ref - t) / h) of its interaction's timestamp, and a state
keeps its reference time t_ref (the newest timestamp of the user's interactions). The update
stays exactly incremental (``apply_decayed_coefficient_changes``: t_ref moves forward by
rescaling, the old term goes with its old timestamp's factor, the new one comes with its
own). A stored state pooled under the other setting (with a reference time and recency off,
or without one and recency on) is pooled again from the whole interaction set.

>>> from streamrec.config import ModelSettings
>>> from streamrec.model.efficientrec import EfficientRec
>>> from streamrec.model.features import FeatureSchema
>>> from streamrec.model.serving import ServingModel
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

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from streamrec.model.contributions import UserContribution
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.memberships import as_pairs, rounded_memberships
from streamrec.model.memberships import top_memberships as strongest_memberships
from streamrec.model.pooling import (
    RecencyPooledSums,
    apply_coefficient_changes,
    apply_decayed_coefficient_changes,
    decayed_pooled_sum,
    full_pooled_sum,
)
from streamrec.model.serving import FeatureLoader, ServingModel
from streamrec.state import UserProfile

Weights = Mapping[str, float]
Timestamps = Mapping[str, float]

# A row whose recency-weighted count falls below this after an incremental step (its newest
# non-zero term is over four half-lives older than t_ref: the newest interaction has a zero
# coefficient) is pooled again from its whole set. The stored sums are float32, so removing a
# term leaves ~6e-8 of the sum before behind, an error of that over n_u in x_u.
RECOMPUTE_BELOW_WEIGHTED_COUNT = 1.0 / 16.0


@dataclass(frozen=True, slots=True)
class UserChangeSet:
    """One user's situation over a batch: the stored state under the serving version (None
    if there is none yet), the weights of their items before and after the batch, and their
    demographics. ``timestamps_before``/``timestamps_after`` hold the timestamp of each
    item's interaction before and after the batch (read only with recency-weighted pooling,
    which then needs every item of ``weights_after`` in ``timestamps_after``)."""

    user_id: str
    stored_state: UserProfile | None
    weights_before: Weights
    weights_after: Weights
    attributes: Mapping[str, str]
    last_event_at: float | None
    timestamps_before: Timestamps = field(default_factory=dict)
    timestamps_after: Timestamps = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserStateUpdate:
    """A user's state before (None: the user never counted under this version) and after."""

    before: UserProfile | None
    after: UserProfile
    weights_before: Weights
    weights_after: Weights
    # Read by decayed cluster statistics only: each item's event time before and after.
    timestamps_before: Timestamps = field(default_factory=dict)
    timestamps_after: Timestamps = field(default_factory=dict)

    def transition(self, membership_step: float) -> tuple[UserContribution, UserContribution]:
        """The user as the cluster statistics held them before and hold them after (their
        memberships rounded to ``model.statistics_membership_precision``): the change to apply.
        A user without a state before never contributed under this version."""
        before = self.before
        held_before = () if before is None else before.top_clusters
        return (
            UserContribution(
                rounded_memberships(held_before, membership_step),
                self.weights_before,
                self.timestamps_before,
                _last_event(before),
            ),
            UserContribution(
                rounded_memberships(self.after.top_clusters, membership_step),
                self.weights_after,
                self.timestamps_after,
                _last_event(self.after),
            ),
        )


def _last_event(profile: UserProfile | None) -> float:
    """When the profile's user last interacted (0 if never said): the time of their mass."""
    if profile is None or profile.last_event_at is None:
        return 0.0
    return profile.last_event_at


def update_user_states(
    serving: ServingModel,
    change_sets: Sequence[UserChangeSet],
    top_memberships: int,
    load_features: FeatureLoader,
    pooling_half_life_seconds: float | None = None,
) -> list[UserStateUpdate]:
    """The new state of every user in ``change_sets``, encoded in one batch;
    ``pooling_half_life_seconds`` is ``serving.pooling_half_life_seconds``."""
    if not change_sets:
        return []
    recency = pooling_half_life_seconds is not None
    changed_items = [
        _changed_items(change, recency) if _is_incremental(change.stored_state, recency) else None
        for change in change_sets
    ]
    needed: set[str] = set()
    for change, changed in zip(change_sets, changed_items, strict=True):
        needed.update(change.weights_after if changed is None else changed)
    vectors = serving.item_vectors(needed, load_features)
    dimension = serving.model.architecture.item_dim
    decayed: RecencyPooledSums | None = None
    if pooling_half_life_seconds is None:
        sums, counts = _pooled_sums_after(
            change_sets, changed_items, serving.model, vectors, dimension
        )
        nonzero_counts = counts
    else:
        decayed = _decayed_pooled_sums_after(
            change_sets,
            changed_items,
            serving.model,
            lambda item_ids: serving.item_vectors(item_ids, load_features),
            vectors,
            dimension,
            pooling_half_life_seconds,
        )
        # Stored as float32 like every state's pooled sum; x_u is computed from these.
        sums = decayed.sums.astype(np.float32)
        counts, nonzero_counts = decayed.weighted_counts, decayed.nonzero_counts
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
            nonzero_count=int(nonzero_counts[row]),
            interaction_count=len(change.weights_after),
            attributes=dict(change.attributes),
            profile=encoded.profiles[row].astype(np.float32),
            top_clusters=pairs,
            model_version=serving.version,
            last_event_at=change.last_event_at,
        )
        if decayed is not None:
            after.weighted_count = float(decayed.weighted_counts[row])
            reference = float(decayed.reference_times[row])
            after.pooling_reference_time = None if np.isnan(reference) else reference
        updates.append(
            UserStateUpdate(
                change.stored_state,
                after,
                change.weights_before,
                change.weights_after,
                change.timestamps_before,
                change.timestamps_after,
            )
        )
    return updates


def _is_incremental(state: UserProfile | None, recency: bool) -> bool:
    """Whether a stored state can move by its changed terms: it exists and was pooled with
    the same setting (recency on: it has a reference time and a weighted count)."""
    if state is None:
        return False
    if recency:
        return state.pooling_reference_time is not None and state.weighted_count is not None
    return state.pooling_reference_time is None


def _changed_items(change: UserChangeSet, recency: bool = False) -> list[str]:
    """Items whose weight changed; with recency also those whose timestamp changed (a newer
    event with the same weight moves the term's recency factor)."""
    before, after = change.weights_before, change.weights_after
    return sorted(
        item_id
        for item_id in before.keys() | after.keys()
        if before.get(item_id) != after.get(item_id)
        or (
            recency
            and change.timestamps_before.get(item_id) != change.timestamps_after.get(item_id)
        )
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


def _decayed_pooled_sums_after(
    change_sets: Sequence[UserChangeSet],
    changed_items: Sequence[list[str] | None],
    model: EfficientRec,
    load_vectors: Callable[[Iterable[str]], Mapping[str, np.ndarray]],
    vectors: Mapping[str, np.ndarray],
    dimension: int,
    half_life_seconds: float,
) -> RecencyPooledSums:
    """The recency-weighted sums of every user after the batch (float64). Users with a
    stored recency state move by their changed terms, all in one
    ``apply_decayed_coefficient_changes``; the others, and the rows whose weighted count fell
    below ``RECOMPUTE_BELOW_WEIGHTED_COUNT``, are pooled from their whole interaction set at
    reference = their newest interaction's timestamp (x_u does not depend on the reference).
    ``load_vectors`` gives the vectors of the items of recomputed rows."""
    state = RecencyPooledSums.empty(len(change_sets), dimension)
    sums, weighted, nonzero, references = (
        state.sums,
        state.weighted_counts,
        state.nonzero_counts,
        state.reference_times,
    )
    rows: list[int] = []
    items: list[str] = []
    old_weights: list[float] = []
    new_weights: list[float] = []
    old_times: list[float] = []
    new_times: list[float] = []
    for row, (change, changed) in enumerate(zip(change_sets, changed_items, strict=True)):
        if changed is None:
            _set_decayed_from_scratch(state, row, change, model, vectors, half_life_seconds)
            continue
        stored = change.stored_state
        assert stored is not None and stored.weighted_count is not None  # see _is_incremental
        sums[row] = stored.pooled_sum
        weighted[row] = stored.weighted_count
        nonzero[row] = stored.nonzero_count
        references[row] = stored.pooling_reference_time
        for item_id in changed:
            new_time = _timestamp(change.timestamps_after, item_id, change.user_id)
            rows.append(row)
            items.append(item_id)
            old_weights.append(change.weights_before.get(item_id, np.nan))
            new_weights.append(change.weights_after.get(item_id, np.nan))
            # A new interaction has no old term; its new time keeps the unused factor finite.
            old_times.append(change.timestamps_before.get(item_id, new_time))
            new_times.append(new_time)
    if not rows:
        return state
    moved = np.unique(rows)
    local_rows = np.searchsorted(moved, rows)
    after = apply_decayed_coefficient_changes(
        RecencyPooledSums(sums[moved], weighted[moved], nonzero[moved], references[moved]),
        local_rows,
        np.stack([vectors[item_id] for item_id in items]),
        model.pooling_coefficients(np.array(old_weights, dtype=np.float32)),
        np.array(old_times, dtype=np.float64),
        model.pooling_coefficients(np.array(new_weights, dtype=np.float32)),
        np.array(new_times, dtype=np.float64),
        half_life_seconds,
    )
    sums[moved], weighted[moved] = after.sums, after.weighted_counts
    nonzero[moved], references[moved] = after.nonzero_counts, after.reference_times
    faint = moved[
        (after.nonzero_counts > 0) & (after.weighted_counts < RECOMPUTE_BELOW_WEIGHTED_COUNT)
    ]
    if len(faint):
        all_vectors = load_vectors(
            {item_id for row in faint for item_id in change_sets[row].weights_after}
        )
        for row in faint:
            _set_decayed_from_scratch(
                state, int(row), change_sets[row], model, all_vectors, half_life_seconds
            )
    return state


def _set_decayed_from_scratch(
    state: RecencyPooledSums,
    row: int,
    change: UserChangeSet,
    model: EfficientRec,
    vectors: Mapping[str, np.ndarray],
    half_life_seconds: float,
) -> None:
    """Row ``row`` of ``state`` (modified in place) pooled from the user's whole set."""
    if not change.weights_after:
        state.sums[row], state.weighted_counts[row] = 0.0, 0.0
        state.nonzero_counts[row], state.reference_times[row] = 0, np.nan
        return
    item_ids = sorted(change.weights_after)
    coefficients = model.pooling_coefficients(
        np.array([change.weights_after[item_id] for item_id in item_ids], dtype=np.float32)
    )
    timestamps = np.array(
        [_timestamp(change.timestamps_after, item_id, change.user_id) for item_id in item_ids]
    )
    reference = float(timestamps.max())
    pooled_sum, weighted_count = decayed_pooled_sum(
        np.stack([vectors[item_id] for item_id in item_ids]),
        coefficients,
        timestamps,
        reference,
        half_life_seconds,
    )
    state.sums[row], state.weighted_counts[row] = pooled_sum, weighted_count
    state.nonzero_counts[row] = np.count_nonzero(coefficients)
    state.reference_times[row] = reference


def _timestamp(timestamps: Timestamps, item_id: str, user_id: str) -> float:
    try:
        return float(timestamps[item_id])
    except KeyError:
        raise ValueError(
            f"user {user_id}: recency-weighted pooling needs the timestamp of item {item_id!r}"
        ) from None
