"""Stable hashing and item featurization: reproducible across processes, robust to bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from streamrec.events import ItemEvent
from streamrec.model.features import FeatureSchema, ItemFeaturizer
from streamrec.model.hashing import attribute_tokens, hashed_pairs, hashed_token_bags


def test_hashed_buckets_are_the_same_in_another_process_with_another_hash_seed() -> None:
    here = hashed_pairs(["item-1", "Ωmega", ""], buckets=65_536).tolist()
    script = (
        "from streamrec.model.hashing import hashed_pairs;"
        "print(hashed_pairs(['item-1', 'Ωmega', ''], buckets=65_536).tolist())"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    ).stdout.strip()
    assert str(here) == there


def test_the_two_hash_functions_differ_and_stay_in_range() -> None:
    pairs = hashed_pairs([f"item-{number}" for number in range(1000)], buckets=97)
    assert pairs.min() >= 0 and pairs.max() < 97
    assert (pairs[:, 0] != pairs[:, 1]).mean() > 0.9


def test_token_bags_have_embedding_bag_layout() -> None:
    flat, offsets = hashed_token_bags([["a=1"], [], ["b=2", "c=3"]], buckets=16)
    assert offsets.tolist() == [0, 1, 1]
    assert len(flat) == 3


def test_attribute_tokens_do_not_depend_on_key_order() -> None:
    assert attribute_tokens({"b": "2", "a": "1"}) == attribute_tokens({"a": "1", "b": "2"})
    assert attribute_tokens(None) == []


def catalogue() -> dict[str, ItemEvent]:
    return {
        "m1": ItemEvent(
            "m1", 0.0, categorical={"genres": ("Comedy", "Drama")}, numeric={"year": 1990}
        ),
        "m2": ItemEvent("m2", 0.0, categorical={"genres": ("Drama",)}, numeric={"year": 2010}),
        "m3": ItemEvent("m3", 0.0),
    }


def test_schema_is_fitted_from_the_data_and_round_trips() -> None:
    schema = FeatureSchema.fit(catalogue().values())
    assert schema.categorical == ("genres",)
    assert schema.numeric == ("year",)
    assert schema.numeric_mean == (2000.0,)
    assert FeatureSchema.from_dict(schema.to_dict()) == schema


def test_items_without_features_or_unknown_to_the_catalogue_get_neutral_inputs() -> None:
    schema = FeatureSchema.fit(catalogue().values())
    inputs = ItemFeaturizer(schema, id_buckets=1024, token_buckets=64).featurize(
        ["m1", "m3", "never-seen"], catalogue()
    )
    assert inputs.numeric[:, 0].tolist() == [-1.0, 0.0, 0.0]
    assert inputs.token_offsets.tolist() == [0, 2, 2]
    assert len(inputs.token_buckets) == 2


def test_absurd_or_malformed_numeric_values_neither_crash_nor_dominate() -> None:
    schema = FeatureSchema.fit(catalogue().values())
    broken = {
        "huge": ItemEvent("huge", 0.0, numeric={"year": 1e12}),
        "nan": ItemEvent("nan", 0.0, numeric={"year": float("nan")}),
        "text": ItemEvent("text", 0.0, numeric={"year": "1999"}),  # type: ignore[dict-item]
    }
    inputs = ItemFeaturizer(schema, id_buckets=1024, token_buckets=64).featurize(
        ["huge", "nan", "text"], broken
    )
    assert inputs.numeric[:, 0].tolist() == [5.0, 0.0, 0.0]


def test_changed_features_of_an_item_are_picked_up_despite_the_cache() -> None:
    schema = FeatureSchema.fit(catalogue().values())
    featurizer = ItemFeaturizer(schema, id_buckets=1024, token_buckets=64)
    before = featurizer.featurize(["m1"], catalogue())
    changed = {"m1": ItemEvent("m1", 1.0, numeric={"year": 2010})}
    after = featurizer.featurize(["m1"], changed)
    assert before.numeric[0, 0] == -1.0 and after.numeric[0, 0] == 1.0
    assert len(after.token_buckets) == 0
    assert np.array_equal(before.id_buckets, after.id_buckets)
