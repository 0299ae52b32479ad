"""Explained recommendations: a stored user's, or those of a history given on the spot.

Both are voted by the model the consumer drives (``model.stream.EfficientRecStream``) and
explained from the same numbers (``model.explanations.explain``): for each item, the sources
that put it there with their share of its score (the clusters' vote; with the item
neighbours on, the neighbours of the user's recent items, naming those items; with the
decayed popularity on, the popularity), the clusters that voted for it with their share of
its vote, its support on a 0-1 scale, and with re-ranking the retrieval part of the vote's
score. Nothing is written: an ad-hoc history is encoded in memory and forgotten.

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

from streamrec.config import ServingSettings
from streamrec.events import ItemEvent, RecommendationMessage
from streamrec.model.explanations import ItemExplanation, ScoreScale, explain
from streamrec.model.history import UserHistory
from streamrec.model.serving import ModelCache
from streamrec.services.recommending import VotedList, voted_for_history, voted_for_user
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
    score_scale: ScoreScale = ScoreScale.VOTE


class Explainer:
    """Serves explained recommendations from a database, keeping the active version's model
    loaded between calls. One may be shared by threads: the model's item cache is guarded."""

    def __init__(self, settings: ServingSettings) -> None:
        self._settings = settings
        self._models = ModelCache()
        self._models_lock = threading.Lock()

    def for_user(
        self, uow: UnitOfWork, user_id: str, now: float, with_history: bool = False
    ) -> ExplainedRecommendations | None:
        """The stored user's current recommendations, explained; None when no model version
        is active. A user without a state is served (and told) the global shortlist."""
        with self._models_lock:
            voted = voted_for_user(uow, user_id, self._settings, now, self._models, explain=True)
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
        interactions = [(entry.item_id, entry.weight) for entry in history]
        # One time for all: a history given without times weighs its items alike, also with
        # recency-weighted pooling.
        ad_hoc = UserHistory(
            AD_HOC_USER, interactions, dict(attributes or {}), [0.0] * len(interactions)
        )
        with self._models_lock:
            voted = voted_for_history(uow, ad_hoc, self._settings, now, self._models, explain=True)
        if voted is None:
            return None
        return self._explained(uow, voted, known_user=voted.known_user, history=[])

    def _explained(
        self,
        uow: UnitOfWork,
        voted: VotedList,
        known_user: bool,
        history: list[Interaction],
    ) -> ExplainedRecommendations:
        message = voted.message
        explanations = explain(
            message.items, message.top_clusters, voted.shortlists, voted.vote_weight, voted.sources
        )
        named = {item.item_id for item in message.items} | {row.item_id for row in history}
        named.update(
            recent.item_id
            for why in explanations
            for source in why.sources
            for recent in source.recent_items
        )
        return ExplainedRecommendations(
            message,
            explanations,
            known_user,
            uow.items.get_many(named),
            history,
            voted.score_scale,
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
        "score_scale": explained.score_scale.value,
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
                "sources": [
                    {
                        "source": source.source.value,
                        "share": source.share,
                        "rank": source.rank,
                        "score": source.score,
                        "recent_items": [
                            {
                                "item_id": recent.item_id,
                                "title": _title(explained.items, recent.item_id),
                                "share": recent.share,
                            }
                            for recent in source.recent_items
                        ],
                    }
                    for source in why.sources
                ],
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
