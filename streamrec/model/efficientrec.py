"""``EfficientRec``: a trained encoder with numpy in and out, for serving and evaluation.

Everything here is a batch operation without gradients: item vectors for a batch of items,
profiles and memberships for a batch of pooled vectors, whole histories encoded at once.
A model is saved as (config dict, weights bytes), the two halves of a ModelVersion.

>>> from streamrec.config import ModelSettings
>>> settings = ModelSettings(hash_buckets=256, item_dim=8, profile_dim=8, hidden_dim=16,
...                          clusters=4, feature_buckets=64)
>>> model = EfficientRec.new(settings, FeatureSchema(), seed=0)
>>> model.item_vectors(["a", "b"], {}).shape
(2, 8)
>>> encoded = model.encode_histories([(["a", "b"], [1.0, -0.5])], [{"age": "25"}], {})
>>> encoded.memberships.shape
(1, 4)
>>> config, weights = model.to_version()
>>> same = EfficientRec.from_version(config, weights)
>>> bool((same.item_vectors(["a"], {}) == model.item_vectors(["a"], {})).all())
True
>>> model.parameter_count() == EfficientRec.new(settings, FeatureSchema()).parameter_count()
True
"""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from streamrec.config import ModelSettings
from streamrec.events import ItemEvent
from streamrec.model.architecture import Architecture
from streamrec.model.encoder import EfficientRecEncoder
from streamrec.model.features import FeatureSchema, ItemFeaturizer
from streamrec.model.hashing import attribute_tokens, hashed_token_bags
from streamrec.model.pooling import pooled_vectors, pooling_coefficients

History = tuple[Sequence[str], Sequence[float]]


class ModelFormatError(ValueError):
    """Saved model bytes or config that cannot be loaded; the message says why."""


@dataclass(frozen=True)
class EncodedUsers:
    """Pooled vectors x_u, profiles z_u and full memberships p_u of a batch of users."""

    pooled: np.ndarray
    profiles: np.ndarray
    memberships: np.ndarray


class EfficientRec:
    def __init__(self, architecture: Architecture, encoder: EfficientRecEncoder) -> None:
        self.architecture = architecture
        self.encoder = encoder
        self.featurizer = ItemFeaturizer(
            architecture.schema, architecture.hash_buckets, architecture.feature_buckets
        )
        encoder.eval()

    @classmethod
    def new(cls, settings: ModelSettings, schema: FeatureSchema, seed: int = 0) -> EfficientRec:
        architecture = Architecture.from_settings(settings, schema)
        return cls.from_architecture(architecture, seed)

    @classmethod
    def from_architecture(cls, architecture: Architecture, seed: int = 0) -> EfficientRec:
        return cls(architecture, _build_encoder(architecture, seed))

    @property
    def clusters(self) -> int:
        return self.architecture.clusters

    def parameter_count(self) -> int:
        """Learned parameters; independent of the number of users and items by construction."""
        return self.encoder.parameter_count()

    def parameter_counts(self) -> dict[str, int]:
        """Learned parameters per part of the encoder, for printing."""
        return {
            name: sum(parameter.numel() for parameter in module.parameters())
            for name, module in self.encoder.named_children()
        }

    def describe(self) -> str:
        """One line: the parameter count and where it sits (none of it per user)."""
        parts = ", ".join(f"{name} {count:,}" for name, count in self.parameter_counts().items())
        return f"{self.parameter_count():,} parameters ({parts}); none per user or per item"

    def copy(self) -> EfficientRec:
        return EfficientRec(self.architecture, copy.deepcopy(self.encoder))

    def item_vectors(self, item_ids: Sequence[str], items: Mapping[str, ItemEvent]) -> np.ndarray:
        """h_j for a batch of items, shape (n, d); an item never seen still gets a vector."""
        return self.item_embeddings(item_ids, items)[0]

    def item_targets(self, item_ids: Sequence[str], items: Mapping[str, ItemEvent]) -> np.ndarray:
        """t_j, the items as retrieval targets (for the optional re-ranking), shape (n, d)."""
        return self.item_embeddings(item_ids, items)[1]

    @torch.no_grad()
    def item_embeddings(
        self, item_ids: Sequence[str], items: Mapping[str, ItemEvent]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(h_j, t_j) for a batch of items in one pass."""
        if not item_ids:
            empty = np.zeros((0, self.architecture.item_dim), dtype=np.float32)
            return empty, empty.copy()
        vectors, targets = self.encoder.item_embeddings(self.featurizer.featurize(item_ids, items))
        return vectors.numpy(), targets.numpy()

    def retrieval_queries(self, profiles: np.ndarray) -> np.ndarray:
        """P z_u for each profile: query . t_j scores how likely the user picks item j.
        A plain numpy product, cheap enough to call per user."""
        projection = self.encoder.retrieval.weight.detach().numpy()
        return np.asarray(profiles, dtype=np.float32) @ projection.T

    @torch.no_grad()
    def encode(
        self, pooled: np.ndarray, attributes: Sequence[Mapping[str, str] | None]
    ) -> EncodedUsers:
        """Profiles and memberships for a batch of pooled vectors x_u (already clipped)."""
        pooled = np.ascontiguousarray(pooled, dtype=np.float32)
        if pooled.shape[0] != len(attributes):
            raise ValueError(f"{pooled.shape[0]} pooled vectors but {len(attributes)} attributes")
        profiles = self.encoder.profiles(torch.from_numpy(pooled), self.attribute_bags(attributes))
        memberships = self.encoder.memberships(profiles)
        return EncodedUsers(pooled, profiles.numpy(), memberships.numpy())

    def encode_pooled_sums(
        self,
        pooled_sums: np.ndarray,
        nonzero_counts: np.ndarray,
        attributes: Sequence[Mapping[str, str] | None],
    ) -> EncodedUsers:
        """As ``encode``, from the running sums (s_u, n_u) a UserProfile keeps."""
        return self.encode(pooled_vectors(pooled_sums, nonzero_counts), attributes)

    def encode_histories(
        self,
        histories: Sequence[History],
        attributes: Sequence[Mapping[str, str] | None],
        items: Mapping[str, ItemEvent],
        item_vectors: Mapping[str, np.ndarray] | None = None,
        recency: Sequence[np.ndarray] | None = None,
    ) -> EncodedUsers:
        """Encode whole interaction sets (cold users, rebuilds). ``item_vectors`` may hold
        vectors computed earlier; the others are computed once for the batch. ``recency``
        (recency-weighted pooling) holds each history's factors r_i
        (``pooling.recency_factors``), which multiply its terms and count contributions."""
        vectors = self._vectors_for(histories, items, item_vectors)
        dimension = self.architecture.item_dim
        sums = np.zeros((len(histories), dimension), dtype=np.float32)
        counts = np.zeros(len(histories), dtype=np.int64 if recency is None else np.float64)
        for row, (item_ids, weights) in enumerate(histories):
            if len(item_ids) == 0:
                continue
            coefficients = self.pooling_coefficients(np.asarray(weights, dtype=np.float32))
            stacked = np.stack([vectors[item_id] for item_id in item_ids])
            if recency is None:
                sums[row] = coefficients @ stacked
                counts[row] = np.count_nonzero(coefficients)
            else:
                factors = np.asarray(recency[row], dtype=np.float64)
                sums[row] = (coefficients * factors) @ stacked
                counts[row] = factors[coefficients != 0].sum()
        return self.encode_pooled_sums(sums, counts, attributes)

    def _vectors_for(
        self,
        histories: Sequence[History],
        items: Mapping[str, ItemEvent],
        known: Mapping[str, np.ndarray] | None,
    ) -> Mapping[str, np.ndarray]:
        known = known or {}
        wanted = sorted({item_id for item_ids, _ in histories for item_id in item_ids} - set(known))
        if not wanted:
            return known
        computed = dict(zip(wanted, self.item_vectors(wanted, items), strict=True))
        return {**known, **computed}

    def pooling_coefficients(self, weights: np.ndarray) -> np.ndarray:
        """c(w) of the model's pooling for preference weights (NaN: no interaction, 0)."""
        return pooling_coefficients(weights, self.architecture.pooling_weight)

    def attribute_bags(
        self, attributes: Sequence[Mapping[str, str] | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        return hashed_token_bags(
            (attribute_tokens(user) for user in attributes), self.architecture.feature_buckets
        )

    def date_statistics(self, timestamps: np.ndarray) -> None:
        """Set the landmark of this version's decayed cluster statistics to the latest of
        ``timestamps``, the event times of its training data (unchanged when empty)."""
        if len(timestamps):
            landmark = float(np.max(timestamps))
            self.architecture = replace(self.architecture, statistics_time_landmark=landmark)

    def to_version(self) -> tuple[dict[str, Any], bytes]:
        """(config, weights): the config rebuilds the modules, the bytes fill them."""
        buffer = io.BytesIO()
        torch.save(self.encoder.state_dict(), buffer)
        return self.architecture.to_dict(), buffer.getvalue()

    @classmethod
    def from_version(cls, config: Mapping[str, Any], weights: bytes) -> EfficientRec:
        try:
            architecture = Architecture.from_dict(config)
        except (TypeError, ValueError) as error:
            raise ModelFormatError(f"model config is not usable: {error}") from None
        try:
            state = torch.load(io.BytesIO(weights), weights_only=True)
        except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as error:
            raise ModelFormatError(f"model weights are not a torch state dict: {error}") from None
        encoder = _build_encoder(architecture, seed=0)
        try:
            encoder.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as error:
            raise ModelFormatError(f"model weights do not fit its config: {error}") from None
        return cls(architecture, encoder)


def _build_encoder(architecture: Architecture, seed: int) -> EfficientRecEncoder:
    # Building a model must not disturb anyone else's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return EfficientRecEncoder(architecture)
