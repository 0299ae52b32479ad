"""The streaming model fed from a table: how ``streamrec eval`` and the trainer's judge run it.

``EfficientRecRecommender`` is the offline interface (fit on a table, recommend for
histories) over the one streaming model, ``streamrec.model.stream.EfficientRecStream``, with
its state in memory. fit trains the encoder on the training users (sampled per step; or takes
a trained model), then learns every training interaction through the stream, in time order,
exactly as the consumer would (interaction rule, pooled sums, top-M memberships, cluster
statistics with the model's membership rounding, shortlists). recommend_many asks the same
stream for each history as a new user it never stored (the cold-user case). There is no
second assembly of the model: what is measured here is what the consumer serves.

``candidates`` chooses what is ranked: ``"shortlists"`` (default, what the consumer serves)
votes the union of the user's top-M clusters' shortlists; ``"catalogue"`` ranks every
training item by the retrieval score alone (``model.catalogue_scoring``), the path
docs/model.md ("Candidate recall") measures beside it.

K (clusters) is fixed at fit. ``reconfigure`` changes the settings afterwards without
retraining: the shortlists are chosen again from the statistics for L and the shortlist
weight, and the training interactions are learned again for M or the pooling half-life,
which the statistics depend on.

>>> from streamrec.config import ModelSettings, ServingSettings, TrainingSettings
>>> from streamrec.model.history import UserHistory
>>> from streamrec.model.interaction_table import InteractionTable
>>> table = InteractionTable.from_rows(
...     (f"u{user}", f"i{(user * 7 + step) % 30}", 1.0, float(step), None)
...     for user in range(40) for step in range(6))
>>> recommender = EfficientRecRecommender(
...     ModelSettings(hash_buckets=256, clusters=4),
...     ServingSettings(shortlist_length=10),
...     TrainingSettings(users_per_step=16, steps=5))
>>> recommender.fit(table, {}, {})
>>> recommendations = recommender.recommend_many([UserHistory("new", [("i3", 1.0)])], n=5)
>>> len(recommendations[0]), "i3" in recommendations[0]
(5, False)
>>> len(recommender.cluster_sizes()), round(sum(recommender.cluster_sizes()), 6) > 0
(4, True)
>>> recommender.candidates = "catalogue"
>>> len(recommender.recommend_many([UserHistory("new", [("i3", 1.0)])], n=40)[0])
29
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from streamrec.config import ModelSettings, ServingSettings, TrainingSettings
from streamrec.events import InteractionEvent, ItemEvent, SourceEvent
from streamrec.model.catalogue_scoring import CatalogueTargets
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.history import UserHistory
from streamrec.model.history_profiles import history_profiles
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.memory_state import InMemoryStreamState
from streamrec.model.serving import ServingModel
from streamrec.model.stream import EfficientRecStream
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import TrainingObserver, TrainingReport, train

# Histories encoded and voted per call of the stream: bounds the (users x items) matrices.
BATCH_USERS = 512
# The version number the in-memory stream serves under (it names no stored version).
TABLE_VERSION = 0
# Settings that only choose shortlists again; any other change learns the table again.
SHORTLIST_SETTINGS = frozenset({"shortlist_length", "shortlist_weight"})
CandidateSource = Literal["shortlists", "catalogue"]
CANDIDATE_SOURCES: tuple[CandidateSource, ...] = ("shortlists", "catalogue")


class EfficientRecRecommender:
    """The offline interface over ``EfficientRecStream`` with an in-memory state."""

    name = "efficientrec"

    def __init__(
        self,
        model_settings: ModelSettings,
        serving_settings: ServingSettings,
        training_settings: TrainingSettings,
        *,
        training_observer: TrainingObserver | None = None,
        model: EfficientRec | None = None,
        train_with_recency: bool = False,
        candidates: CandidateSource = "shortlists",
    ) -> None:
        """``model_settings`` shape the model fit trains (unused with ``model``);
        ``serving_settings`` say how the stream uses it.
        ``model``: a trained model to use as it is (fit then skips training).
        ``train_with_recency``: True also pools the training views with
        ``serving.pooling_half_life_seconds`` (each half's reference its newest interaction);
        False (default) trains as without the setting and weights at inference only.
        ``candidates``: what is ranked (see the module docstring)."""
        if candidates not in CANDIDATE_SOURCES:
            raise ValueError(f"candidates must be one of {', '.join(CANDIDATE_SOURCES)}")
        self.model_settings = model_settings
        self.serving_settings = serving_settings
        self.training_settings = training_settings
        self.training_observer = training_observer
        self.given_model = model
        self.train_with_recency = train_with_recency
        self.candidates: CandidateSource = candidates
        self.training_report: TrainingReport | None = None
        self.stream: EfficientRecStream | None = None
        self._table: InteractionTable | None = None
        self._items: Mapping[str, ItemEvent] = {}
        self._user_attributes: Mapping[str, Mapping[str, str]] = {}
        self._catalogue: CatalogueTargets | None = None

    @property
    def model(self) -> EfficientRec | None:
        if self.stream is not None and self.stream.serving is not None:
            return self.stream.serving.model
        return self.given_model

    @property
    def state(self) -> InMemoryStreamState:
        """The stream's state after fit: the training users, statistics and shortlists."""
        if self.stream is None:
            raise RuntimeError("fit the recommender first")
        state = self.stream.state
        assert isinstance(state, InMemoryStreamState)
        return state

    def fit(
        self,
        train_table: InteractionTable,
        items: Mapping[str, ItemEvent],
        user_attributes: Mapping[str, Mapping[str, str]],
    ) -> None:
        self._table = train_table
        self._items = items
        self._user_attributes = user_attributes
        model = self.given_model or self._trained_model(train_table, items, user_attributes)
        self.stream = self._learned_stream(model)
        self._catalogue = None

    def _learned_stream(self, model: EfficientRec) -> EfficientRecStream:
        """A stream of ``model`` that learned every training interaction, in one batch (the
        state does not depend on how the events are cut into batches)."""
        assert self._table is not None
        stream = EfficientRecStream(
            ServingModel(TABLE_VERSION, model),
            self.serving_settings,
            InMemoryStreamState(self._items),
        )
        stream.record(stream.learn_many(list(_events(self._table, self._user_attributes))))
        return stream

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
            top_memberships=self.serving_settings.top_memberships,
            observer=self.training_observer,
            pooling_half_life_seconds=self.serving_settings.pooling_half_life_seconds
            if self.train_with_recency
            else None,
        )
        model.date_statistics(train_table.timestamps)
        return model

    def reconfigure(self, **changes: Any) -> None:
        """Change L (shortlist_length), M (top_memberships), shortlist_weight, rerank or
        pooling_half_life_seconds after fit; the encoder is not retrained."""
        stream = self.stream
        if stream is None or stream.serving is None:
            raise RuntimeError("fit the recommender first")
        self.serving_settings = ServingSettings(**{**self.serving_settings.model_dump(), **changes})
        relearn = {"top_memberships", "pooling_half_life_seconds"} & set(changes)
        if relearn:
            self.stream = self._learned_stream(stream.serving.model)
            return
        stream.settings = self.serving_settings
        if SHORTLIST_SETTINGS & set(changes):
            stream.refresh_shortlists(stream.state.cluster_masses())

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        if self.stream is None:
            raise RuntimeError("fit the recommender first")
        results: list[list[str]] = []
        for start in range(0, len(histories), BATCH_USERS):
            batch = histories[start : start + BATCH_USERS]
            if self.candidates == "catalogue":
                results.extend(self._from_catalogue(batch, n))
                continue
            voted = self.stream.recommend_histories(batch, n)
            results.extend([item.item_id for item in items] for items in voted)
        return results

    def _from_catalogue(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        """Every training item ranked by retrieval score; a history the model knows
        nothing of gets the stream's answer (the global shortlist)."""
        stream = self.stream
        assert stream is not None and stream.serving is not None
        profiles = history_profiles(
            stream.serving, histories, self.serving_settings, stream.state.item_features
        )
        known = [(row, profile) for row, profile in enumerate(profiles) if profile is not None]
        results: list[list[str]] = [[] for _ in histories]
        if known:
            queries = stream.serving.model.retrieval_queries(
                np.stack([profile for _, profile in known])
            )
            seen = [{item_id for item_id, _ in histories[row].interactions} for row, _ in known]
            ranked = self.catalogue.recommend(queries, seen, n)
            for (row, _), items in zip(known, ranked, strict=True):
                results[row] = [item.item_id for item in items]
        unknown = [row for row, profile in enumerate(profiles) if profile is None]
        if unknown:
            voted = stream.recommend_histories([histories[row] for row in unknown], n)
            for row, items in zip(unknown, voted, strict=True):
                results[row] = [item.item_id for item in items]
        return results

    @property
    def catalogue(self) -> CatalogueTargets:
        """The training items' retrieval targets t_j under the fitted model, computed once."""
        if self._catalogue is None:
            stream = self.stream
            if stream is None or stream.serving is None or self._table is None:
                raise RuntimeError("fit the recommender first")
            vocabulary = self._table.item_vocabulary
            item_ids = [vocabulary[item] for item in np.unique(self._table.items)]
            targets = stream.serving.model.item_targets(
                item_ids, stream.state.item_features(item_ids)
            )
            self._catalogue = CatalogueTargets(item_ids, targets)
        return self._catalogue

    def cluster_sizes(self) -> list[float]:
        """The membership mass M_c of every cluster, in cluster order (what the evaluation
        reports as cluster sizes)."""
        masses = self.state.cluster_masses()
        model = self.model
        clusters = self.model_settings.clusters if model is None else model.clusters
        return [float(masses.get(cluster, 0.0)) for cluster in range(clusters)]

    def parameter_count(self) -> int:
        model = self.model
        return 0 if model is None else model.parameter_count()


def _events(
    table: InteractionTable, user_attributes: Mapping[str, Mapping[str, str]]
) -> Iterator[AcceptedInteraction]:
    """The table's rows as the stream's accepted interactions, in time order, each user's
    demographics on their events (the newest value of each attribute wins anyway)."""
    ratings = table.ratings
    for row in range(len(table)):
        user_id = table.user_vocabulary[table.users[row]]
        timestamp = float(table.timestamps[row])
        rating = float(ratings[row])
        event = InteractionEvent(
            event_id=f"{row:012d}",  # ordered as the rows: a later row wins a tie
            user_id=user_id,
            item_id=table.item_vocabulary[table.items[row]],
            type="rating",
            timestamp=timestamp,
            value=None if np.isnan(rating) else rating,
            user_attributes=dict(user_attributes.get(user_id, {})),
        )
        source = SourceEvent("table", 0, row, timestamp)
        yield AcceptedInteraction(event, float(table.weights[row]), source)
