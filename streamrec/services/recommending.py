"""Recommendations from the stored state: shortlists refreshed from the stored cluster
statistics, and one user's vote as ``streamrec recommend`` and the API serve it. The voting
itself is ``streamrec.model.recommending``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from streamrec.config import ModelSettings
from streamrec.events import RecommendationMessage, RecommendedItem
from streamrec.model.recommending import (
    Shortlist,
    TopClusters,
    global_top_clusters,
    reranking_for,
    shortlist_from_statistics,
    shortlist_pool_size,
    vote,
    vote_with_leads,
)
from streamrec.model.serving import ModelCache
from streamrec.storage.unit_of_work import UnitOfWork


def refresh_shortlists(
    uow: UnitOfWork, version: int, clusters: Iterable[int], settings: ModelSettings
) -> dict[int, list[tuple[str, float]]]:
    """Recompute and store the shortlists of ``clusters`` from the stored statistics; return
    them."""
    clusters = sorted(set(clusters))
    if not clusters:
        return {}
    masses = uow.clusters.masses(version)
    pool = shortlist_pool_size(settings)
    top_items = uow.clusters.top_items_by_cluster(version, clusters, pool)
    shortlists = {
        cluster: shortlist_from_statistics(
            top_items.get(cluster, []), masses.get(cluster, 0.0), settings
        )
        for cluster in clusters
    }
    uow.clusters.save_shortlists(version, shortlists)
    return shortlists


def current_recommendations(
    uow: UnitOfWork,
    user_id: str,
    settings: ModelSettings,
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
    (``model.explanations.explain``): the shortlists of the user's top clusters, and the
    re-ranking's vote weight when the list was re-ranked (None: the scores are the votes)."""

    message: RecommendationMessage
    shortlists: Mapping[int, Shortlist]
    vote_weight: float | None
    # False for a user without a state under the version (served the global shortlist).
    known_user: bool = True


def voted_for_user(
    uow: UnitOfWork,
    user_id: str,
    settings: ModelSettings,
    now: float,
    models: ModelCache | None = None,
) -> VotedList | None:
    """``current_recommendations`` with what they were voted from; None when no version is
    active."""
    version = uow.models.active_version()
    if version is None:
        return None
    state = uow.users.get_many([user_id], version).get(user_id)
    if state is None:
        top_clusters = global_top_clusters(uow.clusters.masses(version), settings.top_memberships)
    else:
        top_clusters = state.top_clusters
    seen = uow.catalogue.items_of_user(user_id)
    profile = None if state is None else state.profile
    voted = vote_for_one(uow, version, user_id, top_clusters, profile, seen, settings, now, models)
    return voted if state is not None else replace(voted, known_user=False)


def vote_for_one(
    uow: UnitOfWork,
    version: int,
    user_id: str,
    top_clusters: TopClusters,
    profile: np.ndarray | None,
    seen: Collection[str],
    settings: ModelSettings,
    now: float,
    models: ModelCache | None = None,
) -> VotedList:
    """The vote of one user with these top clusters and profile z_u (None: no profile, the
    votes are kept) under ``version``, ``seen`` items left out, re-ranked as configured."""
    shortlists = uow.clusters.shortlists(version, [cluster for cluster, _ in top_clusters])
    reranking = None
    if settings.rerank and profile is not None:
        serving = (models or ModelCache()).serving(version, uow.models.get)
        reranking = reranking_for(serving, [profile], settings, uow.items.get_many)
    [items], [leads] = vote_with_leads(
        [top_clusters], shortlists, [seen], settings.recommendations, reranking
    )
    message = RecommendationMessage(
        user_id, tuple(items), version, top_clusters, generated_at=now, lead_clusters=leads
    )
    return VotedList(message, shortlists, None if reranking is None else reranking.vote_weight)


def fallback_recommendations(uow: UnitOfWork, settings: ModelSettings) -> list[RecommendedItem]:
    """What ``current_recommendations`` serves a user the active version has never seen (no
    state, no stored interactions): the global shortlist's vote. Empty when no version is
    active. Observers use it to score what a new user is shown before their first batch."""
    version = uow.models.active_version()
    if version is None:
        return []
    top_clusters = global_top_clusters(uow.clusters.masses(version), settings.top_memberships)
    shortlists = uow.clusters.shortlists(version, [cluster for cluster, _ in top_clusters])
    return vote(top_clusters, shortlists, (), settings.recommendations)
