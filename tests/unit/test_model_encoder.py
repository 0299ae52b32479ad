"""The encoder: fixed-size parameters, reproducible vectors, save/load, cold items and users."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamrec.config import ModelSettings, TrainingSettings
from streamrec.events import ItemEvent
from streamrec.model.efficientrec import EfficientRec, ModelFormatError
from streamrec.model.features import FeatureSchema
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import train

SMALL = ModelSettings(
    hash_buckets=512, item_dim=8, profile_dim=8, hidden_dim=16, clusters=5, feature_buckets=64
)
ITEMS = {
    "m1": ItemEvent("m1", 0.0, categorical={"genres": ("Comedy",)}, numeric={"year": 1990.0}),
    "m2": ItemEvent("m2", 0.0, categorical={"genres": ("Drama",)}, numeric={"year": 2000.0}),
}
SCHEMA = FeatureSchema.fit(ITEMS.values())


def table_of(users: int, items: int = 50) -> InteractionTable:
    """Every user rated two items; built from arrays so a million users stay cheap."""
    generator = np.random.default_rng(0)
    return InteractionTable(
        users=np.repeat(np.arange(users, dtype=np.int32), 2),
        items=generator.integers(0, items, size=2 * users).astype(np.int32),
        weights=np.ones(2 * users, dtype=np.float32),
        timestamps=np.arange(2 * users, dtype=np.float64),
        ratings=np.full(2 * users, np.nan, dtype=np.float32),
        user_vocabulary=[f"u{user}" for user in range(users)],
        item_vocabulary=[f"i{item}" for item in range(items)],
    )


@pytest.mark.parametrize("cluster_head", ["sigmoid", "centroid"])
def test_the_parameter_count_is_the_same_for_a_thousand_and_a_million_users(
    cluster_head: str,
) -> None:
    settings = SMALL.model_copy(update={"cluster_head": cluster_head})
    counts = []
    for users in (1_000, 1_000_000):
        model = EfficientRec.new(settings, FeatureSchema())
        train(
            model,
            InMemoryUserSampler(table_of(users)),
            {},
            TrainingSettings(users_per_step=32),
            steps=2,
        )
        counts.append(model.parameter_count())
    assert counts[0] == counts[1] > 0


def test_the_parameter_count_is_printable_by_part() -> None:
    model = EfficientRec.new(SMALL, SCHEMA)
    assert sum(model.parameter_counts().values()) == model.parameter_count()
    assert f"{model.parameter_count():,} parameters" in model.describe()


def test_the_same_seed_builds_the_same_model_without_touching_the_global_generator() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = EfficientRec.new(SMALL, SCHEMA, seed=4).item_vectors(["m1", "x"], ITEMS)
    assert torch.rand(1) == expected_next
    second = EfficientRec.new(SMALL, SCHEMA, seed=4).item_vectors(["m1", "x"], ITEMS)
    np.testing.assert_array_equal(first, second)


def test_an_item_never_seen_and_without_features_still_gets_a_bounded_vector() -> None:
    model = EfficientRec.new(SMALL, SCHEMA)
    vectors, targets = model.item_embeddings(["brand-new", "m1"], {})
    assert vectors.shape == targets.shape == (2, 8)
    assert np.isfinite(vectors).all() and np.abs(vectors).max() < 1.0
    assert not np.allclose(vectors[0], vectors[1])


def test_demographics_are_optional_and_change_the_profile() -> None:
    model = EfficientRec.new(SMALL, SCHEMA)
    history = (["m1", "m2"], [1.0, 0.5])
    encoded = model.encode_histories(
        [history, history, ([], [])], [None, {"age": "25", "gender": "F"}, {"age": "25"}], ITEMS
    )
    assert encoded.memberships.shape == (3, 5)
    assert not np.allclose(encoded.profiles[0], encoded.profiles[1])
    assert np.isfinite(encoded.profiles).all()


def test_a_saved_version_loads_into_an_identical_model() -> None:
    model = EfficientRec.new(SMALL.model_copy(update={"cluster_head": "centroid"}), SCHEMA, seed=2)
    config, weights = model.to_version()
    loaded = EfficientRec.from_version(config, weights)
    assert loaded.architecture == model.architecture
    history = [(["m1", "z"], [1.0, -1.0])]
    np.testing.assert_array_equal(
        loaded.encode_histories(history, [None], ITEMS).memberships,
        model.encode_histories(history, [None], ITEMS).memberships,
    )


def test_a_version_saved_before_rounded_statistics_keeps_exact_ones() -> None:
    model = EfficientRec.new(
        SMALL.model_copy(update={"statistics_membership_precision": 0.2}), SCHEMA
    )
    config, weights = model.to_version()
    assert (
        EfficientRec.from_version(config, weights).architecture.statistics_membership_precision
        == 0.2
    )
    del config["statistics_membership_precision"]
    assert (
        EfficientRec.from_version(config, weights).architecture.statistics_membership_precision
        == 0.0
    )


@pytest.mark.parametrize(
    ("config_change", "weights", "reason"),
    [
        ({}, b"not a torch file", "not a torch state dict"),
        ({"format_version": 99}, None, "format 99"),
        ({"clusters": 7}, None, "do not fit its config"),
        ({"unknown_field": 1}, None, "not usable"),
    ],
)
def test_a_broken_version_is_refused_with_a_reason(
    config_change: dict[str, object], weights: bytes | None, reason: str
) -> None:
    config, good_weights = EfficientRec.new(SMALL, SCHEMA).to_version()
    with pytest.raises(ModelFormatError, match=reason):
        EfficientRec.from_version({**config, **config_change}, weights or good_weights)
