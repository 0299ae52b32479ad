"""``EfficientRecRecommender``: the model behind the offline evaluation interface.

fit trains the encoder on the training users (sampled per step) and builds the cluster
statistics from all of them; recommend_many encodes each history as a cold user (the model
has never seen them), takes the top-M memberships and lets the clusters vote. K (clusters) is
fixed at fit; L, M and the shortlist weight can be changed afterwards without retraining
(``reconfigure``), which is what a sweep needs.

>>> from streamrec.config import ModelSettings, TrainingSettings
>>> from streamrec.datasets.base import InteractionTable
>>> from streamrec.evaluation.protocol import UserHistory
>>> table = InteractionTable.from_rows(
...     (f"u{user}", f"i{(user * 7 + step) % 30}", 1.0, float(step), None)
...     for user in range(40) for step in range(6))
>>> recommender = EfficientRecRecommender(
...     ModelSettings(hash_buckets=256, clusters=4, shortlist_length=10),
...     TrainingSettings(users_per_step=16, steps=5), progress=False)
>>> recommender.fit(table, {}, {})
>>> recommendations = recommender.recommend_many([UserHistory("new", [("i3", 1.0)])], n=5)
>>> len(recommendations[0]), "i3" in recommendations[0]
(5, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import numpy as np
from scipy import sparse

from streamrec.config import ModelSettings, TrainingSettings
from streamrec.datasets.base import InteractionTable
from streamrec.evaluation.protocol import UserHistory
from streamrec.events import ItemEvent
from streamrec.model.decay import ForwardDecay
from streamrec.model.efficientrec import EfficientRec, EncodedUsers
from streamrec.model.features import FeatureSchema
from streamrec.model.interaction_sets import InteractionSets
from streamrec.model.memberships import dense_top_memberships
from streamrec.model.pooling import pooled_vectors
from streamrec.model.shortlists import NO_ITEM, Shortlists
from streamrec.model.statistics import ClusterStatistics
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import TrainingReport, train
from streamrec.model.voting import vote_many

# Users encoded per batch when building statistics or recommending.
ENCODE_BATCH = 4096


class EfficientRecRecommender:
    name = "efficientrec"

    def __init__(
        self,
        model_settings: ModelSettings,
        training_settings: TrainingSettings,
        progress: bool = True,
        model: EfficientRec | None = None,
    ) -> None:
        """``model`` skips training in fit (a trained model, e.g. the active version)."""
        self.model_settings = model_settings
        self.training_settings = training_settings
        self.progress = progress
        self.model = model
        self.training_report: TrainingReport | None = None
        self.statistics: ClusterStatistics | None = None
        self.shortlists: Shortlists | None = None
        self._dense_shortlists = np.zeros((0, 0))
        self._item_vectors: dict[str, np.ndarray] = {}
        self._items: Mapping[str, ItemEvent] = {}

    def fit(
        self,
        train_table: InteractionTable,
        items: Mapping[str, ItemEvent],
        user_attributes: Mapping[str, Mapping[str, str]],
    ) -> None:
        self._items = items
        if self.model is None:
            self.model = EfficientRec.new(
                self.model_settings, FeatureSchema.fit(items.values()), self.training_settings.seed
            )
            sampler = InMemoryUserSampler(
                train_table, user_attributes, self.training_settings.max_interactions_per_user
            )
            self.training_report = train(
                self.model,
                sampler,
                items,
                self.training_settings,
                top_memberships=self.model_settings.top_memberships,
                progress=self.progress,
            )
        self._build_statistics(InteractionSets.from_table(train_table), user_attributes)
        self.reconfigure()

    def reconfigure(self, **model_settings: object) -> None:
        """Change L (shortlist_length), M (top_memberships) or shortlist_weight after fit.
        A new M rebuilds the statistics, since p_uc counts only each user's top M."""
        previous = self.model_settings
        self.model_settings = ModelSettings(**{**previous.model_dump(), **model_settings})
        if self.statistics is None:
            raise RuntimeError("fit the recommender first")
        if self.model_settings.top_memberships != previous.top_memberships:
            self._aggregate_statistics()
        self.shortlists = Shortlists.from_statistics(
            self.statistics, self.model_settings.shortlist_weight, self.model_settings.shortlist_length
        )
        self._dense_shortlists = self.shortlists.dense()

    def _build_statistics(
        self, sets: InteractionSets, user_attributes: Mapping[str, Mapping[str, str]]
    ) -> None:
        assert self.model is not None
        vectors = self.model.item_vectors(sets.item_vocabulary, self._items)
        self._item_vectors = dict(zip(sets.item_vocabulary, vectors, strict=True))
        coefficients = self.model.pooling_coefficients(sets.weights)
        matrix = sparse.csr_matrix(
            (coefficients, sets.items, sets.offsets),
            shape=(len(sets.user_vocabulary), len(sets.item_vocabulary)),
        )
        nonzero = np.bincount(
            sets.user_of_row(), weights=coefficients != 0, minlength=len(sets.user_vocabulary)
        ).astype(np.int64)
        attributes = [user_attributes.get(user_id) for user_id in sets.user_vocabulary]
        self._training_sets = sets
        self._training_memberships = self._encode_sums(
            np.asarray(matrix @ vectors), nonzero, attributes
        ).memberships
        self._aggregate_statistics()

    def _aggregate_statistics(self) -> None:
        sets = self._training_sets
        decay = ForwardDecay.from_days(
            self.model_settings.decay_half_life_days,
            float(sets.timestamps.min()) if len(sets.timestamps) else 0.0,
        )
        statistics = ClusterStatistics(self.model.clusters, decay=decay)  # type: ignore[union-attr]
        statistics.add_users(
            dense_top_memberships(self._training_memberships, self.model_settings.top_memberships),
            sets.user_of_row(),
            sets.item_vocabulary,
            sets.items,
            sets.weights,
            sets.timestamps,
        )
        self.statistics = statistics

    def _encode_sums(
        self, sums: np.ndarray, counts: np.ndarray, attributes: Sequence[Mapping[str, str] | None]
    ) -> EncodedUsers:
        assert self.model is not None
        parts = [
            self.model.encode(
                pooled_vectors(sums[start : start + ENCODE_BATCH], counts[start : start + ENCODE_BATCH]),
                attributes[start : start + ENCODE_BATCH],
            )
            for start in range(0, len(attributes), ENCODE_BATCH)
        ]
        return EncodedUsers(
            np.concatenate([part.pooled for part in parts]),
            np.concatenate([part.profiles for part in parts]),
            np.concatenate([part.memberships for part in parts]),
        )

    def encode_histories(self, histories: Sequence[UserHistory]) -> EncodedUsers:
        assert self.model is not None
        known = [
            [(item, weight) for item, weight in history.interactions] for history in histories
        ]
        return self.model.encode_histories(
            [([item for item, _ in pairs], [weight for _, weight in pairs]) for pairs in known],
            [history.attributes or None for history in histories],
            self._items,
            self._item_vectors,
        )

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        assert self.shortlists is not None and self.statistics is not None
        encoded = self.encode_histories(histories)
        top = dense_top_memberships(encoded.memberships, self.model_settings.top_memberships)
        # Nothing to go on at all: the global shortlist answers (votes of no cluster).
        blind = np.array([not h.interactions and not h.attributes for h in histories], dtype=bool)
        exclude = np.zeros((len(histories), len(self.statistics.item_ids)), dtype=bool)
        for row, history in enumerate(histories):
            columns = [self.statistics.item_index.get(item) for item, _ in history.interactions]
            exclude[row, [column for column in columns if column is not None]] = True
        columns, _ = vote_many(self._dense_shortlists, top, exclude, n)
        results = []
        for row, history in enumerate(histories):
            if blind[row]:
                picked = [c for c in self.shortlists.global_items if c != NO_ITEM][:n]
            else:
                picked = [column for column in columns[row] if column != NO_ITEM]
            results.append([self.statistics.item_ids[column] for column in picked])
        return results

    def parameter_count(self) -> int:
        return 0 if self.model is None else self.model.parameter_count()
