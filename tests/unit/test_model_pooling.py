"""The running sums of a user: exact incremental updates equal a full recomputation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.config import ModelSettings
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.pooling import (
    apply_coefficient_changes,
    full_pooled_sum,
    pooled_vectors,
    pooling_coefficients,
)

ITEMS = [f"item-{number}" for number in range(12)]
WEIGHTS = st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0])
EVENTS = st.lists(st.tuples(st.sampled_from(ITEMS), WEIGHTS), min_size=1, max_size=60)


def small_model(pooling_weight: str) -> EfficientRec:
    settings = ModelSettings(
        hash_buckets=256,
        item_dim=8,
        profile_dim=8,
        hidden_dim=16,
        clusters=4,
        feature_buckets=64,
        pooling_weight=pooling_weight,
    )
    return EfficientRec.new(settings, FeatureSchema(), seed=1)


MODELS = {mode: small_model(mode) for mode in ("preference", "shifted", "presence")}
VECTORS = {
    mode: dict(zip(ITEMS, model.item_vectors(ITEMS, {}), strict=True))
    for mode, model in MODELS.items()
}


@pytest.mark.parametrize("mode", sorted(MODELS))
@settings(max_examples=40, deadline=None)
@given(events=EVENTS)
def test_event_by_event_updates_equal_a_full_recomputation(
    mode: str, events: list[tuple[str, float]]
) -> None:
    model, vectors = MODELS[mode], VECTORS[mode]
    sums, counts = np.zeros((1, 8), np.float32), np.zeros(1, np.int64)
    weights: dict[str, float] = {}
    for item_id, weight in events:
        # One change per call, as a consumer applies a user's events batch after batch.
        sums, counts = apply_coefficient_changes(
            sums,
            counts,
            np.array([0]),
            vectors[item_id][None],
            model.pooling_coefficients(np.array([weights.get(item_id, np.nan)])),
            model.pooling_coefficients(np.array([weight])),
        )
        weights[item_id] = weight
    final = list(weights)
    expected_sum, expected_count = full_pooled_sum(
        np.stack([vectors[item] for item in final]),
        model.pooling_coefficients(np.array([weights[item] for item in final])),
    )
    assert counts[0] == expected_count
    np.testing.assert_allclose(sums[0], expected_sum, atol=1e-5)
    np.testing.assert_allclose(
        pooled_vectors(sums, counts),
        pooled_vectors(expected_sum[None], [expected_count]),
        atol=1e-5,
    )


def test_many_changes_to_the_same_user_in_one_batch_all_apply() -> None:
    vectors = np.eye(3, dtype=np.float32)
    sums, counts = apply_coefficient_changes(
        np.zeros((2, 3), np.float32),
        np.zeros(2, np.int64),
        rows=np.array([0, 0, 1, 0]),
        item_vectors=vectors[[0, 1, 2, 0]],
        old_coefficients=np.array([0.0, 0.0, 0.0, 1.0]),
        new_coefficients=np.array([1.0, 0.5, -1.0, 0.0]),
    )
    assert sums.tolist() == [[0.0, 0.5, 0.0], [0.0, 0.0, -1.0]]
    assert counts.tolist() == [1, 1]


def test_pooled_vector_is_clipped_and_zero_without_interactions() -> None:
    pooled = pooled_vectors(np.array([[5.0, -5.0], [0.0, 0.0]]), np.array([2, 0]))
    assert pooled.tolist() == [[1.0, -1.0], [0.0, 0.0]]


def test_preference_pooling_is_the_methods_weight_and_absent_is_zero() -> None:
    weights = np.array([-1.0, 0.0, 0.6, np.nan], dtype=np.float32)
    np.testing.assert_allclose(pooling_coefficients(weights, "preference"), [-1.0, 0.0, 0.6, 0.0])
    np.testing.assert_allclose(pooling_coefficients(weights, "presence"), [1.0, 1.0, 1.0, 0.0])


def test_an_unknown_pooling_mode_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="'sideways'"):
        pooling_coefficients(np.zeros(1), "sideways")  # type: ignore[arg-type]
