"""Explained recommendations: a stored user's, or those of a history given on the spot.

Both are voted exactly as the consumer votes (``services.recommending.vote_for_one``) and
explained from the same numbers (``model.explanations.explain``): for each item, the clusters
that voted for it with their share of its vote, its support on a 0-1 scale, and with
re-ranking the retrieval part of its score. Nothing is written: an ad-hoc history is encoded
in memory and forgotten.

An ad-hoc history is a list of (item, weight) pairs, the weight a preference in [-1, 1]
(docs/events.md, "Preference weights"; 1 when not given). It is pooled without recency
weights, since it carries no times. A history with no items and no demographics gets the
global shortlist, as an unknown user does.

>>> HistoryEntry("318").weight
1.0
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamrec.config import ModelSettings
from streamrec.events import ItemEvent, RecommendationMessage
from streamrec.model.explanations import ItemExplanation, explain
from streamrec.model.memberships import as_pairs
from streamrec.model.memberships import top_memberships as strongest_memberships
from streamrec.model.recommending import TopClusters, global_top_clusters
from streamrec.model.serving import ModelCache
from streamrec.services.recommending import VotedList, vote_for_one, voted_for_user
from streamrec.state import Interaction
from streamrec.storage.unit_of_work import UnitOfWork

# The user id an ad-hoc history's message carries: it belongs to nobody.
AD_HOC_USER = ""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One item of an ad-hoc history and the user's preference weight for it, in [-1, 1]."""

    item_id: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class ExplainedRecommendations:
    """A list as the pipeline would publish it (``message``, with its lead clusters), each
    item's full explanation, and the stored items (titles) of the items it names.
    ``known_user`` is False for a user with no state under the active version (served the
    global shortlist); ``history`` holds a stored user's interactions, newest first."""

    message: RecommendationMessage
    explanations: list[ItemExplanation]
    known_user: bool
    items: Mapping[str, ItemEvent] = field(default_factory=dict)
    history: list[Interaction] = field(default_factory=list)


class Explainer:
    """Serves explained recommendations from a database, keeping the active version's model
    loaded between calls. One may be shared by threads: the model's item cache is guarded."""

    def __init__(self, settings: ModelSettings) -> None:
        self._settings = settings
        self._models = ModelCache()
        self._models_lock = threading.Lock()

    def for_user(
        self, uow: UnitOfWork, user_id: str, now: float, with_history: bool = False
    ) -> ExplainedRecommendations | None:
        """The stored user's current recommendations, explained; None when no model version
        is active. A user without a state is served (and told) the global shortlist."""
        with self._models_lock:
            voted = voted_for_user(uow, user_id, self._settings, now, self._models)
        if voted is None:
            return None
        history: list[Interaction] = []
        if with_history:
            history = sorted(
                uow.interactions.for_users([user_id]).get(user_id, []),
                key=lambda row: (-row.timestamp, row.item_id),
            )
        return self._explained(uow, voted, voted.known_user, history)

    def for_history(
        self,
        uow: UnitOfWork,
        history: Sequence[HistoryEntry],
        now: float,
        attributes: Mapping[str, str] | None = None,
    ) -> ExplainedRecommendations | None:
        """Recommendations for ``history`` as if a new user had exactly these interactions
        (and demographics), explained; nothing is stored. None when no version is active."""
        version = uow.models.active_version()
        if version is None:
            return None
        # The latest weight of an item wins, as the interaction rule keeps one per item.
        weights = {entry.item_id: entry.weight for entry in history}
        attributes = dict(attributes or {})
        profile = None
        if not weights and not attributes:
            top_clusters: TopClusters = global_top_clusters(
                uow.clusters.masses(version), self._settings.top_memberships
            )
        else:
            with self._models_lock:
                serving = self._models.serving(version, uow.models.get)
                item_ids = list(weights)
                vectors = serving.item_vectors(item_ids, uow.items.get_many)
                encoded = serving.model.encode_histories(
                    [(item_ids, [weights[item_id] for item_id in item_ids])],
                    [attributes or None],
                    {},
                    item_vectors=vectors,
                )
            clusters, values = strongest_memberships(
                encoded.memberships, self._settings.top_memberships
            )
            [top_clusters] = as_pairs(clusters, values)
            profile = encoded.profiles[0]
        with self._models_lock:
            voted = vote_for_one(
                uow,
                version,
                AD_HOC_USER,
                top_clusters,
                profile,
                set(weights),
                self._settings,
                now,
                self._models,
            )
        return self._explained(uow, voted, known_user=profile is not None, history=[])

    def _explained(
        self,
        uow: UnitOfWork,
        voted: VotedList,
        known_user: bool,
        history: list[Interaction],
    ) -> ExplainedRecommendations:
        message = voted.message
        explanations = explain(
            message.items, message.top_clusters, voted.shortlists, voted.vote_weight
        )
        named = {item.item_id for item in message.items} | {row.item_id for row in history}
        return ExplainedRecommendations(
            message, explanations, known_user, uow.items.get_many(named), history
        )


def explained_document(explained: ExplainedRecommendations) -> dict[str, Any]:
    """The JSON form of an explained list, shared by ``streamrec recommend --explain --json``
    and the HTTP API (docs/api.md): every number of ``ItemExplanation`` per item, with the
    item's title when known."""
    message = explained.message
    return {
        "user_id": message.user_id or None,
        "model_version": message.model_version,
        "generated_at": message.generated_at,
        "known_user": explained.known_user,
        "top_clusters": [
            {"cluster": cluster, "membership": membership}
            for cluster, membership in message.top_clusters
        ],
        "items": [
            {
                "rank": rank,
                "item_id": why.item_id,
                "title": _title(explained.items, why.item_id),
                "score": why.score,
                "vote": why.vote,
                "support": why.support,
                "retrieval": why.retrieval,
                "clusters": [
                    {
                        "cluster": vote.cluster,
                        "membership": vote.membership,
                        "weight": vote.weight,
                        "contribution": vote.contribution,
                        "share": vote.share,
                    }
                    for vote in why.clusters
                ],
            }
            for rank, why in enumerate(explained.explanations, start=1)
        ],
    }


def _title(items: Mapping[str, ItemEvent], item_id: str) -> str | None:
    item = items.get(item_id)
    return None if item is None else item.title
