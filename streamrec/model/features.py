"""Visible item features phi(v_j): the schema is configuration, recorded in the model config.

Categorical features (e.g. genres, multi-hot) become hashed "name=value" tokens for an
EmbeddingBag; numeric features (e.g. year) are standardised with statistics fitted once and
stored with the model, so every process turns the same item into the same inputs. An item
with no features, or with a value the schema does not know, still gets valid inputs.

>>> from streamrec.events import ItemEvent
>>> catalogue = {"m1": ItemEvent("m1", 0.0, categorical={"genres": ("Comedy",)},
...                              numeric={"year": 1990.0}),
...              "m2": ItemEvent("m2", 0.0, numeric={"year": 2000.0})}
>>> schema = FeatureSchema.fit(catalogue.values())
>>> schema.categorical, schema.numeric, schema.numeric_mean
(('genres',), ('year',), (1995.0,))
>>> inputs = ItemFeaturizer(schema, id_buckets=256, token_buckets=64).featurize(
...     ["m1", "m2", "never-seen"], catalogue)
>>> inputs.numeric[:, 0].tolist(), inputs.token_offsets.tolist()
([-1.0, 1.0, 0.0], [0, 1, 1])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamrec.events import ItemEvent
from streamrec.model.hashing import hashed_pairs, hashed_token_bags

# The featurizer's cache stops growing here; past it, it starts over.
CACHE_LIMIT = 1_000_000


@dataclass(frozen=True)
class FeatureSchema:
    """Which item features the model reads, and how numeric ones are standardised."""

    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    numeric_mean: tuple[float, ...] = ()
    numeric_scale: tuple[float, ...] = ()

    @classmethod
    def fit(cls, items: Iterable[ItemEvent]) -> FeatureSchema:
        """Every feature name seen in ``items``, numeric ones with their mean and spread."""
        categorical: set[str] = set()
        numeric_values: dict[str, list[float]] = {}
        for item in items:
            categorical.update(item.categorical)
            for name, value in item.numeric.items():
                if math.isfinite(value):
                    numeric_values.setdefault(name, []).append(value)
        numeric = tuple(sorted(numeric_values))
        means = tuple(float(np.mean(numeric_values[name])) for name in numeric)
        scales = tuple(_spread(numeric_values[name]) for name in numeric)
        return cls(tuple(sorted(categorical)), numeric, means, scales)

    def to_dict(self) -> dict[str, Any]:
        return {
            "categorical": list(self.categorical),
            "numeric": list(self.numeric),
            "numeric_mean": list(self.numeric_mean),
            "numeric_scale": list(self.numeric_scale),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        return cls(
            categorical=tuple(data.get("categorical", ())),
            numeric=tuple(data.get("numeric", ())),
            numeric_mean=tuple(float(value) for value in data.get("numeric_mean", ())),
            numeric_scale=tuple(float(value) for value in data.get("numeric_scale", ())),
        )


def _spread(values: list[float]) -> float:
    spread = float(np.std(values))
    # A constant feature carries no information; dividing by 1 keeps it finite.
    return spread if spread > 1e-9 else 1.0


@dataclass(frozen=True)
class ItemInputs:
    """The model's inputs for a batch of items, as arrays.

    id_buckets (n, 2) are the two hashed rows of each item's id embedding; token_buckets and
    token_offsets are the bags of hashed feature tokens (EmbeddingBag layout); numeric (n, f)
    holds the standardised numeric features, 0 (the mean) where a value is missing.
    """

    id_buckets: np.ndarray
    token_buckets: np.ndarray
    token_offsets: np.ndarray
    numeric: np.ndarray

    def __len__(self) -> int:
        return int(self.id_buckets.shape[0])


@dataclass(frozen=True)
class _FeaturizedItem:
    features: ItemEvent | None  # what it was computed from; other features mean recompute
    id_buckets: np.ndarray
    token_buckets: np.ndarray
    numeric: np.ndarray


class ItemFeaturizer:
    """Turns item ids and their (optional) features into ItemInputs, reproducibly.

    Results are cached per item id (hashing is the costly part), and recomputed when the
    item's features object changes."""

    def __init__(self, schema: FeatureSchema, id_buckets: int, token_buckets: int) -> None:
        self.schema = schema
        self.id_buckets = id_buckets
        self.token_buckets = token_buckets
        self._cache: dict[str, _FeaturizedItem] = {}

    def featurize(self, item_ids: Sequence[str], items: Mapping[str, ItemEvent]) -> ItemInputs:
        featurized = [self._featurized(item_id, items.get(item_id)) for item_id in item_ids]
        lengths = [len(item.token_buckets) for item in featurized]
        offsets = np.zeros(len(featurized), dtype=np.int64)
        if featurized:
            np.cumsum(lengths[:-1], out=offsets[1:])
        return ItemInputs(
            id_buckets=np.stack([item.id_buckets for item in featurized])
            if featurized
            else np.zeros((0, 2), dtype=np.int64),
            token_buckets=np.concatenate([item.token_buckets for item in featurized])
            if featurized
            else np.zeros(0, dtype=np.int64),
            token_offsets=offsets,
            numeric=np.stack([item.numeric for item in featurized])
            if featurized
            else np.zeros((0, len(self.schema.numeric)), dtype=np.float32),
        )

    def tokens(self, item: ItemEvent | None) -> list[str]:
        if item is None:
            return []
        return [
            f"{name}={value}"
            for name in self.schema.categorical
            for value in item.categorical.get(name, ())
        ]

    def _featurized(self, item_id: str, features: ItemEvent | None) -> _FeaturizedItem:
        cached = self._cache.get(item_id)
        if cached is not None and cached.features is features:
            return cached
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        token_buckets, _ = hashed_token_bags([self.tokens(features)], self.token_buckets)
        computed = _FeaturizedItem(
            features=features,
            id_buckets=hashed_pairs([item_id], self.id_buckets)[0],
            token_buckets=token_buckets,
            numeric=self._numeric(features),
        )
        self._cache[item_id] = computed
        return computed

    def _numeric(self, item: ItemEvent | None) -> np.ndarray:
        schema = self.schema
        values = np.zeros(len(schema.numeric), dtype=np.float32)
        if item is None or not item.numeric:
            return values
        for column, name in enumerate(schema.numeric):
            value = item.numeric.get(name)
            # Upstream validation should stop non-numbers; a stray one is treated as missing.
            if isinstance(value, int | float) and math.isfinite(value):
                mean, scale = schema.numeric_mean[column], schema.numeric_scale[column]
                # Clipped so one absurd value cannot dominate the item's vector.
                values[column] = max(-5.0, min(5.0, (value - mean) / scale))
        return values
