"""``EfficientRecRecommender``: the model behind the offline evaluation interface.

fit trains the encoder on the training users (sampled per step) and builds the cluster
statistics from all of them; recommend_many encodes each history as a cold user (the model
has never seen them), takes the top-M memberships and lets the clusters vote. K (clusters) is
fixed at fit; L, M, the shortlist weight and the re-ranking can be changed afterwards without
retraining (``reconfigure``), which is what a sweep needs.

With ``model.pooling_half_life_seconds`` set, every served pooled vector (the training users'
at fit, for the cluster statistics, and each evaluated history) weights its interactions by
r_i = 2^(-(t_ref - t_i) / h), t_ref the user's newest interaction with a non-zero coefficient
(x_u does not depend on t_ref; this choice keeps n_u >= 1). Histories must then carry
timestamps. The encoder is trained on unweighted views unless ``train_with_recency`` is True:
recency at inference only measured better on Amazon Beauty (docs/model.md).

>>> from streamrec.config import ModelSettings, TrainingSettings
>>> from streamrec.model.interaction_table import InteractionTable
>>> from streamrec.model.history import UserHistory
>>> table = InteractionTable.from_rows(
...     (f"u{user}", f"i{(user * 7 + step) % 30}", 1.0, float(step), None)
...     for user in range(40) for step in range(6))
>>> recommender = EfficientRecRecommender(
...     ModelSettings(hash_buckets=256, clusters=4, shortlist_length=10),
...     TrainingSettings(users_per_step=16, steps=5))
>>> recommender.fit(table, {}, {})
>>> recommendations = recommender.recommend_many([UserHistory("new", [("i3", 1.0)])], n=5)
>>> len(recommendations[0]), "i3" in recommendations[0]
(5, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from streamrec.config import ModelSettings, TrainingSettings
from streamrec.events import ItemEvent
from streamrec.model.decay import ForwardDecay
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.history import UserHistory
from streamrec.model.interaction_sets import InteractionSets
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.memberships import dense_top_memberships, top_memberships
from streamrec.model.pooling import bag_recency_factors, pooled_vectors, set_recency_factors
from streamrec.model.shortlists import NO_ITEM, Shortlists
from streamrec.model.statistics import ClusterStatistics
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import TrainingObserver, TrainingReport, train
from streamrec.model.voting import recommend

# Users encoded and scored per batch: bounds the (users x items) score matrices.
BATCH_USERS = 1024


@dataclass
class _Fitted:
    """Everything fit produces; recommend_many reads only this."""

    model: EfficientRec
    training_users: InteractionSets
    memberships: np.ndarray  # (training users x K), all clusters
    item_vectors: dict[str, np.ndarray]
    statistics: ClusterStatistics
    shortlists: Shortlists


class EfficientRecRecommender:
    name = "efficientrec"

    def __init__(
        self,
        model_settings: ModelSettings,
        training_settings: TrainingSettings,
        *,
        training_observer: TrainingObserver | None = None,
        model: EfficientRec | None = None,
        train_with_recency: bool = False,
    ) -> None:
        """``model``: a trained model to use as it is (fit then skips training).
        ``train_with_recency``: True also pools the training views with
        ``model.pooling_half_life_seconds`` (each half's reference its newest interaction);
        False (default) trains as without the setting and weights at inference only."""
        self.model_settings = model_settings
        self.training_settings = training_settings
        self.training_observer = training_observer
        self.given_model = model
        self.train_with_recency = train_with_recency
        self.training_report: TrainingReport | None = None
        self._items: Mapping[str, ItemEvent] = {}
        self._user_attributes: Mapping[str, Mapping[str, str]] = {}
        self._fitted: _Fitted | None = None

    @property
    def model(self) -> EfficientRec | None:
        return self._fitted.model if self._fitted else self.given_model

    @property
    def statistics(self) -> ClusterStatistics | None:
        return self._fitted.statistics if self._fitted else None

    @property
    def shortlists(self) -> Shortlists | None:
        return self._fitted.shortlists if self._fitted else None

    def fit(
        self,
        train_table: InteractionTable,
        items: Mapping[str, ItemEvent],
        user_attributes: Mapping[str, Mapping[str, str]],
    ) -> None:
        self._items = items
        self._user_attributes = user_attributes
        model = self.given_model or self._trained_model(train_table, items, user_attributes)
        sets = InteractionSets.from_table(train_table)
        vectors = model.item_vectors(sets.item_vocabulary, items)
        memberships = self._memberships(model, sets, vectors)
        statistics = self._statistics(model, sets, memberships)
        shortlists = self._shortlists(model, statistics, sets)
        self._fitted = _Fitted(
            model=model,
            training_users=sets,
            memberships=memberships,
            item_vectors=dict(zip(sets.item_vocabulary, vectors, strict=True)),
            statistics=statistics,
            shortlists=shortlists,
        )

    def _memberships(
        self, model: EfficientRec, sets: InteractionSets, vectors: np.ndarray
    ) -> np.ndarray:
        """Full memberships of every training user, pooled from their whole sets."""
        coefficients = model.pooling_coefficients(sets.weights)
        users = len(sets.user_vocabulary)
        half_life = self.model_settings.pooling_half_life_seconds
        if half_life is None:
            terms, present = coefficients, coefficients != 0
        else:
            factors = bag_recency_factors(
                sets.timestamps, sets.user_of_row(), coefficients, users, half_life
            )
            terms, present = coefficients * factors, np.where(coefficients != 0, factors, 0.0)
        matrix = sparse.csr_matrix(
            (terms, sets.items, sets.offsets), shape=(users, len(sets.item_vocabulary))
        )
        counts = np.bincount(sets.user_of_row(), weights=present, minlength=users)
        # Integer counts without recency: pooled_vectors' path for today's behaviour.
        counts = counts.astype(np.int64) if half_life is None else counts
        pooled = pooled_vectors(np.asarray(matrix @ vectors), counts)
        attributes = [self._user_attributes.get(user_id) for user_id in sets.user_vocabulary]
        return np.concatenate(
            [
                model.encode(
                    pooled[start : start + BATCH_USERS], attributes[start : start + BATCH_USERS]
                ).memberships
                for start in range(0, len(attributes), BATCH_USERS)
            ]
        )

    def _trained_model(
        self,
        train_table: InteractionTable,
        items: Mapping[str, ItemEvent],
        user_attributes: Mapping[str, Mapping[str, str]],
    ) -> EfficientRec:
        model = EfficientRec.new(
            self.model_settings, FeatureSchema.fit(items.values()), self.training_settings.seed
        )
        sampler = InMemoryUserSampler(
            train_table, user_attributes, self.training_settings.max_interactions_per_user
        )
        self.training_report = train(
            model,
            sampler,
            items,
            self.training_settings,
            top_memberships=self.model_settings.top_memberships,
            observer=self.training_observer,
            pooling_half_life_seconds=self.model_settings.pooling_half_life_seconds
            if self.train_with_recency
            else None,
        )
        return model

    def reconfigure(self, **changes: Any) -> None:
        """Change L (shortlist_length), M (top_memberships), shortlist_weight, rerank or
        pooling_half_life_seconds after fit (the encoder is not retrained). A new M rebuilds
        the statistics, since p_uc counts only each user's top M; a new half-life re-pools
        the training users first."""
        fitted = self._fitted
        if fitted is None:
            raise RuntimeError("fit the recommender first")
        previous = self.model_settings
        self.model_settings = ModelSettings(**{**previous.model_dump(), **changes})
        if self.model_settings.pooling_half_life_seconds != previous.pooling_half_life_seconds:
            sets = fitted.training_users
            vectors = np.stack([fitted.item_vectors[item] for item in sets.item_vocabulary])
            fitted.memberships = self._memberships(fitted.model, sets, vectors)
            fitted.statistics = self._statistics(fitted.model, sets, fitted.memberships)
        elif self.model_settings.top_memberships != previous.top_memberships:
            fitted.statistics = self._statistics(
                fitted.model, fitted.training_users, fitted.memberships
            )
        fitted.shortlists = self._shortlists(fitted.model, fitted.statistics, fitted.training_users)

    def _statistics(
        self, model: EfficientRec, sets: InteractionSets, memberships: np.ndarray
    ) -> ClusterStatistics:
        landmark = float(sets.timestamps.min()) if len(sets.timestamps) else 0.0
        decay = ForwardDecay.from_days(self.model_settings.decay_half_life_days, landmark)
        statistics = ClusterStatistics(model.clusters, decay=decay)
        statistics.add_users(
            dense_top_memberships(memberships, self.model_settings.top_memberships),
            sets.user_of_row(),
            sets.item_vocabulary,
            sets.items,
            sets.weights,
            sets.timestamps,
        )
        return statistics

    def _shortlists(
        self, model: EfficientRec, statistics: ClusterStatistics, sets: InteractionSets
    ) -> Shortlists:
        # With decay, the statistics are read as of the last training event.
        now = float(sets.timestamps.max()) if len(sets.timestamps) else None
        shortlists = Shortlists.from_statistics(
            statistics,
            self.model_settings.shortlist_weight,
            self.model_settings.shortlist_length,
            now=now,
        )
        return shortlists.with_targets(model.item_targets(shortlists.item_ids, self._items))

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        if self._fitted is None:
            raise RuntimeError("fit the recommender first")
        results: list[list[str]] = []
        for start in range(0, len(histories), BATCH_USERS):
            results.extend(
                self._recommend_batch(self._fitted, histories[start : start + BATCH_USERS], n)
            )
        return results

    def _recommend_batch(
        self, fitted: _Fitted, histories: Sequence[UserHistory], n: int
    ) -> list[list[str]]:
        encoded = fitted.model.encode_histories(
            [
                ([item for item, _ in history.interactions], [w for _, w in history.interactions])
                for history in histories
            ],
            [history.attributes or None for history in histories],
            self._items,
            fitted.item_vectors,
            self._recency(fitted.model, histories),
        )
        shortlists = fitted.shortlists
        settings = self.model_settings
        clusters, values = top_memberships(encoded.memberships, settings.top_memberships)
        queries = None
        if settings.rerank and shortlists.targets is not None:
            queries = fitted.model.retrieval_queries(encoded.profiles)
        global_items = [column for column in shortlists.global_items if column != NO_ITEM]
        results = []
        for row, history in enumerate(histories):
            if not history.interactions and not history.attributes:
                # Nothing to go on at all: the global shortlist answers.
                results.append([shortlists.item_ids[column] for column in global_items[:n]])
                continue
            # One user at a time, as the consumer serves: O(M L), whatever the catalogue.
            recommended = recommend(
                shortlists,
                clusters[row],
                values[row],
                shortlists.columns_of(item for item, _ in history.interactions),
                n,
                None if queries is None else queries[row],
                settings.rerank_vote_weight,
            )
            results.append([item.item_id for item in recommended])
        return results

    def _recency(
        self, model: EfficientRec, histories: Sequence[UserHistory]
    ) -> list[np.ndarray] | None:
        """Each history's recency factors (reference: its newest non-zero interaction), or
        None without a half-life."""
        half_life = self.model_settings.pooling_half_life_seconds
        if half_life is None:
            return None
        factors = []
        for history in histories:
            if history.timestamps is None or len(history.timestamps) != len(history.interactions):
                raise ValueError(
                    f"history of {history.user_id!r} has no timestamp per interaction, which "
                    "model.pooling_half_life_seconds needs"
                )
            coefficients = model.pooling_coefficients(
                np.array([weight for _, weight in history.interactions], dtype=np.float32)
            )
            factors.append(set_recency_factors(history.timestamps, coefficients, half_life))
        return factors

    def parameter_count(self) -> int:
        model = self.model
        return 0 if model is None else model.parameter_count()
