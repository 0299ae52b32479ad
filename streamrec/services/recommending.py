"""Recommendations from the stored state, as ``streamrec recommend``, the API and the trainer's
rebuild ask for them: the streaming model (``streamrec.model.stream.EfficientRecStream``)
over the database adapter (``streamrec.services.stream_state``), outside the consumer.

Nothing here votes or chooses shortlists itself: that is the model's, so what a reader is
shown is what the consumer publishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from streamrec.config import ServingSettings
from streamrec.events import RecommendationMessage, RecommendedItem
from streamrec.model.explanations import ScoreScale, SourceShare
from streamrec.model.history import UserHistory
from streamrec.model.recommending import Shortlist
from streamrec.model.serving import ModelCache
from streamrec.model.stream import EfficientRecStream, UserRecommendations
from streamrec.services.stream_state import DatabaseStreamState
from streamrec.services.user_cache import UserCache
from streamrec.storage.unit_of_work import UnitOfWork


def stream_over(
    uow: UnitOfWork, version: int, settings: ServingSettings, models: ModelCache | None = None
) -> EfficientRecStream:
    """The model of ``version`` over the stored state, for reading (``models`` keeps loaded
    versions between calls: a long-lived reader passes its own)."""
    state = DatabaseStreamState(uow, version, UserCache(0), state_token=0)
    serving = (models or ModelCache()).serving(version, uow.models.get)
    return EfficientRecStream(serving, settings, state)


def refresh_shortlists(
    uow: UnitOfWork, version: int, clusters: Iterable[int], settings: ServingSettings
) -> dict[int, list[tuple[str, float]]]:
    """Recompute and store the shortlists of ``clusters`` from the stored statistics; return
    them."""
    state = DatabaseStreamState(uow, version, UserCache(0), state_token=0)
    return EfficientRecStream(None, settings, state).refresh_shortlists(clusters)


def current_recommendations(
    uow: UnitOfWork,
    user_id: str,
    settings: ServingSettings,
    now: float,
    models: ModelCache | None = None,
) -> RecommendationMessage | None:
    """The user's recommendations from the stored state, as the pipeline would publish them;
    None when no model version is active. A user without a state gets the global shortlist.
    ``models`` keeps loaded versions between calls (a long-lived reader passes its own)."""
    voted = voted_for_user(uow, user_id, settings, now, models)
    return None if voted is None else voted.message


@dataclass(frozen=True, slots=True)
class VotedList:
    """One user's recommendations and what they were voted from, enough to explain them
    (``model.explanations.explain``): the shortlists of the user's top clusters, the
    re-ranking's vote weight when the list was re-ranked (None: the scores are the votes),
    and when asked for, each item's sources."""

    message: RecommendationMessage
    shortlists: Mapping[int, Shortlist]
    vote_weight: float | None
    # False for a user without a state under the version (served the global shortlist).
    known_user: bool = True
    sources: Sequence[tuple[SourceShare, ...]] | None = None
    score_scale: ScoreScale = ScoreScale.VOTE


def voted_for_user(
    uow: UnitOfWork,
    user_id: str,
    settings: ServingSettings,
    now: float,
    models: ModelCache | None = None,
    explain: bool = False,
) -> VotedList | None:
    """``current_recommendations`` with what they were voted from (with ``explain``, each
    item's sources too); None when no version is active."""
    version = uow.models.active_version()
    if version is None:
        return None
    [voted] = stream_over(uow, version, settings, models).vote_many([user_id], explain=explain)
    return _voted_list(uow, version, voted, settings, now)


def voted_for_history(
    uow: UnitOfWork,
    history: UserHistory,
    settings: ServingSettings,
    now: float,
    models: ModelCache | None = None,
    explain: bool = False,
) -> VotedList | None:
    """The vote for a user the state does not hold, given by ``history`` (encoded as a new
    user with exactly these interactions and demographics; nothing is stored), as
    ``voted_for_user``; None when no version is active."""
    version = uow.models.active_version()
    if version is None:
        return None
    stream = stream_over(uow, version, settings, models)
    [voted] = stream.vote_histories([history], explain=explain)
    return _voted_list(uow, version, voted, settings, now)


def _voted_list(
    uow: UnitOfWork,
    version: int,
    voted: UserRecommendations,
    settings: ServingSettings,
    now: float,
) -> VotedList:
    message = RecommendationMessage(
        voted.user_id,
        tuple(voted.items),
        version,
        voted.top_clusters,
        generated_at=now,
        lead_clusters=voted.lead_clusters,
        lead_sources=voted.lead_sources,
    )
    shortlists = uow.clusters.shortlists(version, [cluster for cluster, _ in voted.top_clusters])
    # A known user's list is re-ranked when configured; the fallback keeps the votes.
    vote_weight = settings.rerank_vote_weight if settings.rerank and voted.known else None
    scale = ScoreScale.of(
        voted.fused, settings.popularity_fallback and not voted.known, vote_weight is not None
    )
    return VotedList(message, shortlists, vote_weight, voted.known, voted.sources or None, scale)


def fallback_recommendations(uow: UnitOfWork, settings: ServingSettings) -> list[RecommendedItem]:
    """What ``current_recommendations`` serves a user the active version has never seen (no
    state, no stored interactions): the global shortlist's vote. Empty when no version is
    active. Observers use it to score what a new user is shown before their first batch."""
    version = uow.models.active_version()
    if version is None:
        return []
    # No history to encode: the model need not be loaded.
    state = DatabaseStreamState(uow, version, UserCache(0), state_token=0)
    stream = EfficientRecStream(None, settings, state)
    [items] = stream.recommend_histories([UserHistory("", [])])
    return items
