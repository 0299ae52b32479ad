"""The serving model of each version, loaded once, with its item vectors cached.

A consumer asks for the active version on every batch (one cheap query) and only loads the
weights when the version changed, so a newly activated model is picked up without a restart.
Item vectors h_j (what pooling sums) and targets t_j (what re-ranking scores) are cached per
version, both computed in one pass; an item event drops the item's entries, because its
features (and so its vectors) changed.

>>> from streamrec.config import ModelSettings
>>> from streamrec.model.efficientrec import EfficientRec
>>> from streamrec.model.features import FeatureSchema
>>> settings = ModelSettings(hash_buckets=64, item_dim=4, profile_dim=4, hidden_dim=8,
...                          clusters=3, feature_buckets=32)
>>> serving = ServingModel(7, EfficientRec.new(settings, FeatureSchema()))
>>> vectors = serving.item_vectors(["i1", "i2"], load_features=lambda ids: {})
>>> sorted(vectors), vectors["i1"].shape, serving.cached_vectors
(['i1', 'i2'], (4,), 2)
>>> serving.item_targets(["i2"], load_features=lambda ids: {})["i2"].shape
(4,)
>>> serving.forget_items(["i1"])
>>> serving.cached_vectors
1
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from streamrec.errors import UserFacingError
from streamrec.events import ItemEvent
from streamrec.model.decay import ForwardDecay
from streamrec.model.efficientrec import EfficientRec, ModelFormatError
from streamrec.state import ModelVersion

# Bounds the memory of the cache (at d = 64, a million vectors take 256 MB).
MAX_CACHED_VECTORS = 500_000

FeatureLoader = Callable[[Sequence[str]], Mapping[str, ItemEvent]]


class ServingModel:
    """One model version ready to serve: the encoder and a cache of its item vectors."""

    def __init__(
        self, version: int, model: EfficientRec, max_cached_vectors: int = MAX_CACHED_VECTORS
    ) -> None:
        self.version = version
        self.model = model
        self._vectors: dict[str, np.ndarray] = {}
        self._targets: dict[str, np.ndarray] = {}
        self._max_cached_vectors = max_cached_vectors

    def statistics_decay(self, half_life_days: float | None) -> ForwardDecay | None:
        """The forward decay of this version's cluster statistics at ``half_life_days``
        (``serving.decay_half_life_days``; None: no decay), from the version's landmark."""
        landmark = self.model.architecture.statistics_time_landmark
        return ForwardDecay.from_days(half_life_days, landmark)

    @property
    def cached_vectors(self) -> int:
        return len(self._vectors)

    def item_vectors(
        self, item_ids: Iterable[str], load_features: FeatureLoader
    ) -> dict[str, np.ndarray]:
        """h_j of each item; those not cached are computed in one batch from the features
        ``load_features`` returns (an item without stored features still gets a vector)."""
        wanted = set(item_ids)
        self._compute_missing(wanted, load_features)
        return {item_id: self._vectors[item_id] for item_id in wanted}

    def item_targets(
        self, item_ids: Iterable[str], load_features: FeatureLoader
    ) -> dict[str, np.ndarray]:
        """t_j of each item, cached like ``item_vectors``."""
        wanted = set(item_ids)
        self._compute_missing(wanted, load_features)
        return {item_id: self._targets[item_id] for item_id in wanted}

    def _compute_missing(self, wanted: set[str], load_features: FeatureLoader) -> None:
        missing = sorted(wanted - self._vectors.keys())
        if not missing:
            return
        if len(self._vectors) + len(missing) > self._max_cached_vectors:
            self._vectors.clear()
            self._targets.clear()
        vectors, targets = self.model.item_embeddings(missing, load_features(missing))
        self._vectors.update(zip(missing, vectors, strict=True))
        self._targets.update(zip(missing, targets, strict=True))

    def forget_items(self, item_ids: Iterable[str]) -> None:
        """Drop cached vectors of items whose features changed."""
        for item_id in item_ids:
            self._vectors.pop(item_id, None)
            self._targets.pop(item_id, None)


class UnusableModelError(UserFacingError):
    """The active model version cannot serve; the message says which and why."""


class ModelCache:
    """Keeps the ServingModel of the version most recently asked for."""

    def __init__(self) -> None:
        self._serving: ServingModel | None = None

    def serving(
        self, version: int, load_version: Callable[[int], ModelVersion | None]
    ) -> ServingModel:
        """The serving model of ``version``, loading it through ``load_version`` if needed.

        Raises UnusableModelError if the version is not registered or its stored weights
        cannot be loaded: serving must stop rather than guess.
        """
        if self._serving is None or self._serving.version != version:
            stored = load_version(version)
            if stored is None:
                raise UnusableModelError(f"model version {version} is not registered")
            try:
                model = EfficientRec.from_version(stored.config, stored.weights)
            except ModelFormatError as error:
                raise UnusableModelError(
                    f"active model version {version} cannot be loaded: {error}"
                ) from None
            self._serving = ServingModel(version, model)
        return self._serving

    def forget_items(self, item_ids: Iterable[str]) -> None:
        if self._serving is not None:
            self._serving.forget_items(item_ids)
