"""The streaming EfficientRec: one object that learns from interaction events and recommends.

``EfficientRecStream`` owns what happens to a batch of valid interaction events, in named
steps: the interaction rule (idempotent, order-independent), the demographics they carry,
re-embedding the touched users incrementally (pooled sums, profile, top-M memberships), the
cluster-statistic deltas, the shortlist refresh, and the vote of each touched user's
recommendations (re-ranked, seen items excluded, the global shortlist for a user the model
has no state for). Its state sits behind a port, ``StreamState``: the consumer's adapter keeps
it in the database (``streamrec.services.stream_state``), ``InMemoryStreamState`` keeps it in
dictionaries for evaluation, tests and an in-process stream. The same code answers in both.

It knows nothing of Kafka, SQL, datasets or progress bars, and it never holds the state
itself, so a consumer builds one per batch over that batch's transaction.

>>> from streamrec.config import ModelSettings, ServingSettings
>>> from streamrec.events import InteractionEvent, SourceEvent
>>> from streamrec.model.efficientrec import EfficientRec
>>> from streamrec.model.features import FeatureSchema
>>> from streamrec.model.interaction_rule import AcceptedInteraction
>>> from streamrec.model.memory_state import InMemoryStreamState
>>> from streamrec.model.serving import ServingModel
>>> model = ModelSettings(hash_buckets=64, item_dim=4, profile_dim=4, hidden_dim=8, clusters=3)
>>> serving = ServingModel(1, EfficientRec.new(model, FeatureSchema()))
>>> settings = ServingSettings(top_memberships=2, recommendations=3)
>>> stream = EfficientRecStream(serving, settings, InMemoryStreamState())
>>> def event(n, user, item):
...     interaction = InteractionEvent(f"e{n}", user, item, "like", float(n))
...     return AcceptedInteraction(interaction, 1.0, SourceEvent("interactions", 0, n, n))
>>> learned = stream.learn_many([event(0, "u1", "i1"), event(1, "u2", "i2"),
...                              event(2, "u2", "i3"), event(3, "u3", "i1")])
>>> learned.applied, [user.user_id for user in learned.recommendations]
(4, ['u1', 'u2', 'u3'])
>>> sorted(item.item_id for item in stream.recommend_one("u1"))  # never its own item
['i2', 'i3']
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from streamrec.config import ServingSettings
from streamrec.events import InteractionEvent, ItemEvent, RecommendedItem, SourceEvent
from streamrec.model.contributions import ClusterDeltaColumns, batch_delta_columns
from streamrec.model.decayed_popularity import (
    SECONDS_PER_HOUR,
    PopularityIncrements,
    popular_candidates,
    popular_read_size,
    popularity_increments,
)
from streamrec.model.explanations import SourceShare, item_sources
from streamrec.model.history import UserHistory
from streamrec.model.history_profiles import history_change_set
from streamrec.model.interaction_rule import (
    AcceptedInteraction,
    InteractionResolution,
    UserItem,
    resolve_interactions,
)
from streamrec.model.item_neighbours import (
    CooccurrenceIncrements,
    Neighbours,
    cooccurrence_increments,
    naming_recent_items,
    neighbour_candidates,
    recent_items,
)
from streamrec.model.rank_fusion import FusedItem, RankedList, Source, fuse_lists, fuses
from streamrec.model.recommending import (
    LEAD_SHARE_DECIMALS,
    LeadClusters,
    LeadSources,
    Reranking,
    Shortlist,
    TopClusters,
    global_top_clusters,
    reranking_for,
    shortlist_from_statistics,
    shortlist_pool_size,
    vote_for_users,
    vote_with_leads,
)
from streamrec.model.serving import ServingModel
from streamrec.model.short_lists import fill_short_lists
from streamrec.model.shortlist_refresh import RefreshPlan, ShortlistRefreshSchedule
from streamrec.model.user_attributes import EventKey, merge_attributes
from streamrec.model.user_states import UserChangeSet, UserStateUpdate, update_user_states
from streamrec.state import ClusterItemStatistics, Interaction, UserProfile

Shortlists = dict[int, list[tuple[str, float]]]


class StreamState(Protocol):
    """Where a stream's state lives: users' interactions, profiles and demographics under
    one model version, and that version's cluster statistics and shortlists.

    ``store_*`` may leave the write in flight until the next call (a database adapter
    overlaps it with the computation after it); every other call sees all earlier writes.
    """

    def interactions_and_profiles(
        self, user_ids: Collection[str]
    ) -> tuple[dict[str, list[Interaction]], dict[str, UserProfile]]:
        """The users' stored interactions, and their profiles under the version (a user
        without one is absent)."""
        ...

    def demographics(self, user_ids: Collection[str]) -> dict[str, dict[str, str]]:
        """The stored demographics of those users who have any record (absent: none)."""
        ...

    def demographic_event_keys(self, user_ids: Collection[str]) -> dict[str, dict[str, EventKey]]:
        """Per user, the key of the event each stored attribute came from."""
        ...

    def store_demographics(
        self, attributes: Mapping[str, dict[str, str]], keys: Mapping[str, dict[str, EventKey]]
    ) -> None: ...

    def store_interactions(self, rows: Sequence[Interaction]) -> None: ...

    def store_profiles(self, profiles: Sequence[UserProfile]) -> None: ...

    def add_statistics(self, deltas: ClusterDeltaColumns) -> None: ...

    def cluster_masses(self) -> dict[int, float]: ...

    def most_rated_items(
        self, clusters: Collection[int], count: int
    ) -> dict[int, list[ClusterItemStatistics]]:
        """Each cluster's ``count`` items with the largest rated mass."""
        ...

    def store_shortlists(self, shortlists: Mapping[int, list[tuple[str, float]]]) -> None: ...

    def shortlists(self, clusters: Collection[int]) -> Shortlists: ...

    def add_cooccurrences(self, increments: CooccurrenceIncrements) -> None:
        """Add a batch's item co-occurrence counts (``model.item_neighbours``)."""
        ...

    def item_neighbours(
        self, item_ids: Collection[str], count: int
    ) -> dict[str, list[tuple[str, float]]]:
        """Each item's ``count`` most co-occurring other items with their counts, largest
        first, ties by item id (an item without any is absent)."""
        ...

    def item_popularity(self, item_ids: Collection[str]) -> dict[str, float]:
        """How many users have each item, as counted with the co-occurrences (an item
        without a count is absent)."""
        ...

    def add_popularity(self, increments: PopularityIncrements) -> None:
        """Combine a batch's decayed popularity into the stored one, per item (a log-sum-exp:
        ``model.decayed_popularity``)."""
        ...

    def most_popular_items(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` items of largest decayed popularity with their log2 scores,
        largest first, ties by item id."""
        ...

    def item_features(self, item_ids: Sequence[str]) -> Mapping[str, ItemEvent]: ...

    def last_recommendations(self, user_ids: Collection[str]) -> Mapping[str, Collection[str]]:
        """The item ids last recommended to those of ``user_ids`` whose list is remembered
        (an adapter may forget, e.g. after a restart: such a user's list is voted again)."""
        ...

    def remember_recommendations(self, lists: Mapping[str, Collection[str]]) -> None: ...


@dataclass(frozen=True, slots=True)
class UserRecommendations:
    """One touched user's list after a batch, and the memberships it was voted from. A
    fused list (item neighbours or decayed popularity on, or the popularity fallback) names
    each item's lead source too; ``sources`` holds every item's sources when asked for."""

    user_id: str
    items: list[RecommendedItem]
    top_clusters: TopClusters
    lead_clusters: LeadClusters
    # False for a user the model has no profile for: voted by the global fallback.
    known: bool = True
    lead_sources: LeadSources = ()
    sources: tuple[tuple[SourceShare, ...], ...] = ()
    # True when the scores are rank-fusion scores (model.rank_fusion), not the vote's.
    fused: bool = False


@dataclass(slots=True)
class LearnedBatch:
    """What ``learn_many`` did: the interaction rule's outcome, the users whose model state
    changed (their change sets, which a version being rebuilt must see too), the touched
    users' recommendations, the prequential hits (for each applied event of a user the model
    had a profile for: was the item among that user's recommendations before the batch), the
    shortlist refresh to record once the batch is stored, and what was read and written of
    the users."""

    resolution: InteractionResolution
    change_sets: list[UserChangeSet] = field(default_factory=list)
    recommendations: list[UserRecommendations] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    refresh_plan: RefreshPlan | None = None
    stored_interactions: dict[str, list[Interaction]] = field(default_factory=dict)
    # The same rows by user, then item: read by the interaction rule and by
    # ``interactions_after``, built once per batch.
    stored_by_item: dict[str, dict[str, Interaction]] = field(default_factory=dict)
    profiles_written: dict[str, UserProfile] = field(default_factory=dict)
    _after: dict[str, tuple[Interaction, ...]] | None = None

    @property
    def applied(self) -> int:
        return self.resolution.applied

    @property
    def ignored(self) -> int:
        return self.resolution.ignored

    def interactions_after(self) -> dict[str, tuple[Interaction, ...]]:
        """The interactions, after the batch, of each user it stored rows for (computed
        once: the neighbours and the consumer's user cache both read them)."""
        if self._after is None:
            self._after = interactions_after(self.stored_by_item, self.resolution)
        return self._after


class EfficientRecStream:
    """learn_many / recommend_many / recommend_one of one model version over a state.

    ``serving`` None (no active version): ``learn_many`` still stores interactions and
    demographics, and nothing is encoded or recommended. ``refresh`` decides which shortlists
    a batch recomputes (default: every changed cluster, every batch).
    """

    def __init__(
        self,
        serving: ServingModel | None,
        settings: ServingSettings,
        state: StreamState,
        *,
        refresh: ShortlistRefreshSchedule | None = None,
    ) -> None:
        self.serving = serving
        self.settings = settings
        self.state = state
        self._refresh = refresh or ShortlistRefreshSchedule(interval_seconds=0.0)

    # Learning -----------------------------------------------------------------------------

    def learn_many(
        self,
        events: Sequence[AcceptedInteraction],
        *,
        recommend_for: Sequence[str] | None = None,
        prequential_hits: bool = True,
    ) -> LearnedBatch:
        """Learn ``events`` (in stream order) and recommend for the users they name, or for
        ``recommend_for`` in its order (it must name them all; it may name more, e.g. users
        whose events were learned before and who get their list again). With
        ``prequential_hits`` False the batch's events are not judged (``hits`` stays empty):
        a caller that judges them itself saves a vote per batch."""
        touched = list(
            dict.fromkeys(
                [accepted.event.user_id for accepted in events]
                if recommend_for is None
                else recommend_for
            )
        )
        stored, profiles = self.state.interactions_and_profiles(touched)
        stored_by_item = {
            user_id: {row.item_id: row for row in rows} for user_id, rows in stored.items()
        }
        resolution = resolve_interactions(events, StoredPairs(stored_by_item))
        attributes, attributes_changed = self._merge_demographics(events, touched, profiles)
        self.state.store_interactions(resolution.rows_to_store)
        weights = UserWeights.of(touched, stored, resolution, with_timestamps=self._timed)
        change_sets = _change_sets(
            resolution, attributes_changed, profiles, weights, attributes, self._timed
        )
        learned = LearnedBatch(
            resolution, change_sets, stored_interactions=stored, stored_by_item=stored_by_item
        )
        increments = None
        if self.settings.neighbours:
            increments = cooccurrence_increments(
                stored, resolution.rows_to_store, self.settings.neighbour_history
            )
        popularity = self._popularity_increments(resolution.rows_to_store)
        if self.serving is None:
            self._add_cooccurrences(increments)
            self._add_popularity(popularity)
            return learned
        before = self._shortlists_of(profiles.values())
        if prequential_hits:
            learned.hits = self._prequential_hits(
                resolution.applied_pairs, profiles, before, weights, stored
            )
        # After the hits: they judge the lists as they stood before the batch.
        self._add_cooccurrences(increments)
        self._add_popularity(popularity)
        updates = self._reembed(change_sets)
        learned.profiles_written = {update.after.user_id: update.after for update in updates}
        learned.refresh_plan, refreshed = self._move_statistics(updates)
        current = {**profiles, **learned.profiles_written}
        after = learned.interactions_after() if self.settings.neighbours else {}
        recent = self._recent([after.get(user) or stored.get(user, ()) for user in touched])
        learned.recommendations = self._vote(
            touched,
            current,
            {**before, **refreshed},
            [weights.after[user] for user in touched],
            recent=recent,
        )
        self.state.remember_recommendations(
            {
                user.user_id: [item.item_id for item in user.items]
                for user in learned.recommendations
                if user.known
            }
        )
        return learned

    def _add_cooccurrences(self, increments: CooccurrenceIncrements | None) -> None:
        if increments:
            self.state.add_cooccurrences(increments)

    def _popularity_increments(self, rows: Sequence[Interaction]) -> PopularityIncrements | None:
        """The batch's decayed popularity, when the fallback or the source reads it."""
        if not self._keeps_popularity or not rows:
            return None
        half_life = self.settings.popularity_half_life_hours * SECONDS_PER_HOUR
        return popularity_increments(rows, half_life)

    def _add_popularity(self, increments: PopularityIncrements | None) -> None:
        if increments:
            self.state.add_popularity(increments)

    @property
    def _keeps_popularity(self) -> bool:
        return self.settings.popularity_fallback or self.settings.popularity_weight > 0.0

    def _recent(self, interactions: Iterable[Iterable[Interaction]]) -> list[list[str]] | None:
        """Each user's most recent items, newest first, when the neighbours are on."""
        if not self.settings.neighbours:
            return None
        return [recent_items(rows, self.settings.neighbour_history) for rows in interactions]

    def record(self, learned: LearnedBatch) -> None:
        """Note that ``learned`` was stored (a batch that rolled back is not recorded)."""
        if learned.refresh_plan is not None:
            self._refresh.record(learned.refresh_plan)

    def _merge_demographics(
        self,
        events: Sequence[AcceptedInteraction],
        touched: Sequence[str],
        profiles: Mapping[str, UserProfile],
    ) -> tuple[dict[str, dict[str, str]], set[str]]:
        """Every touched user's demographics after the events (per attribute the newest
        event wins, ``model.user_attributes``), and the users whose values changed (the
        encoder reads them). Only users whose events name attributes are written."""
        attributes = {user_id: dict(profile.attributes) for user_id, profile in profiles.items()}
        attributes.update(
            self.state.demographics([user_id for user_id in touched if user_id not in profiles])
        )
        events_by_user: dict[str, list[InteractionEvent]] = {}
        for accepted in events:
            if accepted.event.user_attributes:
                events_by_user.setdefault(accepted.event.user_id, []).append(accepted.event)
        stored_keys = self.state.demographic_event_keys(events_by_user) if events_by_user else {}
        changed: set[str] = set()
        to_save: dict[str, dict[str, str]] = {}
        keys_to_save: dict[str, dict[str, EventKey]] = {}
        for user_id, user_events in events_by_user.items():
            stored = stored_keys.get(user_id, {})
            merged = merge_attributes(attributes.get(user_id, {}), stored, user_events)
            if merged.attributes != attributes.get(user_id):
                changed.add(user_id)
            if user_id in changed or merged.event_keys != stored:
                attributes[user_id] = merged.attributes
                to_save[user_id] = merged.attributes
                keys_to_save[user_id] = merged.event_keys
        if to_save:
            self.state.store_demographics(to_save, keys_to_save)
        return {user_id: attributes.get(user_id, {}) for user_id in touched}, changed

    def _reembed(self, change_sets: Sequence[UserChangeSet]) -> list[UserStateUpdate]:
        """The changed users' new pooled sums, profiles and top-M memberships, stored."""
        assert self.serving is not None
        updates = update_user_states(
            self.serving,
            change_sets,
            self.settings.top_memberships,
            self.state.item_features,
            self._recency,
        )
        self.state.store_profiles([update.after for update in updates])
        return updates

    def _move_statistics(
        self, updates: Sequence[UserStateUpdate]
    ) -> tuple[RefreshPlan | None, Shortlists]:
        """Add the exact cluster-statistic deltas of ``updates`` and refresh the shortlists
        the schedule says are due; the refresh plan and the refreshed shortlists."""
        assert self.serving is not None
        precision = self.serving.model.architecture.statistics_membership_precision
        deltas = batch_delta_columns(
            [update.transition(precision) for update in updates],
            self.serving.statistics_decay(self.settings.decay_half_life_days),
        )
        if not deltas:
            return None, {}
        self.state.add_statistics(deltas)
        plan = self._refresh.plan(
            self.serving.version, deltas.affected_clusters(), self.state.cluster_masses
        )
        return plan, self.refresh_shortlists(plan.refresh)

    def refresh_shortlists(self, clusters: Iterable[int]) -> Shortlists:
        """Recompute and store the shortlists of ``clusters`` from the statistics."""
        clusters = sorted(set(clusters))
        if not clusters:
            return {}
        masses = self.state.cluster_masses()
        top_items = self.state.most_rated_items(clusters, shortlist_pool_size(self.settings))
        shortlists = {
            cluster: shortlist_from_statistics(
                top_items.get(cluster, []), masses.get(cluster, 0.0), self.settings
            )
            for cluster in clusters
        }
        self.state.store_shortlists(shortlists)
        return shortlists

    def _prequential_hits(
        self,
        applied_pairs: Sequence[tuple[str, str]],
        profiles: Mapping[str, UserProfile],
        shortlists: Shortlists,
        weights: UserWeights,
        stored: Mapping[str, Sequence[Interaction]],
    ) -> list[bool]:
        """For each applied event of a user with a profile before the batch: was its item
        in the list last recommended to the user (what the user saw)? A list the state does
        not remember is voted as it stands before the batch. Users new to the model had no
        recommendations of their own; counting their events as misses would make a change in
        the share of new users look like drift."""
        known = sorted({user_id for user_id, _ in applied_pairs if user_id in profiles})
        if not known:
            return []
        recommended = {
            user_id: set(items) for user_id, items in self.state.last_recommendations(known).items()
        }
        # Voting is the costly part of judging a batch: only forgotten lists are voted.
        forgotten = [user_id for user_id in known if user_id not in recommended]
        if forgotten:
            voted = self._vote(
                forgotten,
                profiles,
                shortlists,
                [weights.before[user_id] for user_id in forgotten],
                leads=False,
                recent=self._recent([stored.get(user_id, ()) for user_id in forgotten]),
            )
            recommended.update(
                (user.user_id, {item.item_id for item in user.items}) for user in voted
            )
        return [
            item_id in recommended[user_id]
            for user_id, item_id in applied_pairs
            if user_id in recommended
        ]

    # Recommending -------------------------------------------------------------------------

    def recommend_many(
        self, user_ids: Sequence[str], n: int | None = None
    ) -> list[list[RecommendedItem]]:
        """Each user's top ``n`` (default: ``serving.recommendations``) from the state as it
        stands, without their own items; the global shortlist for a user without a profile."""
        return [user.items for user in self.vote_many(user_ids, n)]

    def vote_many(
        self, user_ids: Sequence[str], n: int | None = None, *, explain: bool = False
    ) -> list[UserRecommendations]:
        """``recommend_many`` with what each list was voted from (the user's top clusters,
        each item's lead cluster and lead source, whether the user was known): what
        explanations need; with ``explain``, every item's sources too."""
        if self.serving is None:
            return [UserRecommendations(user_id, [], (), (), False) for user_id in user_ids]
        stored, profiles = self.state.interactions_and_profiles(user_ids)
        seen = [{row.item_id: row.weight for row in stored.get(user, ())} for user in user_ids]
        recent = self._recent([stored.get(user, ()) for user in user_ids])
        return self._vote(user_ids, profiles, {}, seen, n, recent=recent, explain=explain)

    def recommend_one(self, user_id: str, n: int | None = None) -> list[RecommendedItem]:
        """``recommend_many`` for one user."""
        return self.recommend_many([user_id], n)[0]

    def recommend_histories(
        self, histories: Sequence[UserHistory], n: int | None = None
    ) -> list[list[RecommendedItem]]:
        """Recommendations for users given by their histories instead of the state: each is
        encoded as a new user with exactly these interactions (the last weight of an item
        wins) and demographics, as learning them would; nothing is stored. A history with
        neither gets the global shortlist."""
        return [user.items for user in self.vote_histories(histories, n, leads=False)]

    def vote_histories(
        self,
        histories: Sequence[UserHistory],
        n: int | None = None,
        *,
        leads: bool = True,
        explain: bool = False,
    ) -> list[UserRecommendations]:
        """``recommend_histories`` with what each list was voted from (``vote_many``).
        Without the serving model only empty histories can be answered (by the global
        fallback)."""
        keys = [f"history {row}" for row in range(len(histories))]
        change_sets = [
            history_change_set(key, history)
            for key, history in zip(keys, histories, strict=True)
            if history.interactions or history.attributes
        ]
        updates = []
        if change_sets:
            if self.serving is None:
                raise RuntimeError("encoding a history needs the serving model")
            updates = update_user_states(
                self.serving,
                change_sets,
                self.settings.top_memberships,
                self.state.item_features,
                self._recency,
            )
        profiles = {update.after.user_id: update.after for update in updates}
        seen = [{item_id for item_id, _ in history.interactions} for history in histories]
        recent = None
        if self.settings.neighbours:
            recent = [
                _recent_of_history(history, self.settings.neighbour_history)
                for history in histories
            ]
        voted = self._vote(keys, profiles, {}, seen, n, leads=leads, recent=recent, explain=explain)
        return [
            replace(user, user_id=history.user_id)
            for user, history in zip(voted, histories, strict=True)
        ]

    def _vote(
        self,
        user_ids: Sequence[str],
        profiles: Mapping[str, UserProfile],
        shortlists: Shortlists,
        seen: Sequence[Collection[str]],
        n: int | None = None,
        *,
        leads: bool = True,
        recent: Sequence[Sequence[str]] | None = None,
        explain: bool = False,
    ) -> list[UserRecommendations]:
        """The vote of ``user_ids`` (re-ranked as configured); ``shortlists`` holds those
        already read, the others are read here. ``leads`` also names each item's lead
        cluster, and in a fused list its lead source (what a published message carries).
        With ``recent`` (each user's recent items, newest first) the vote is fused with
        those items' neighbours, and with ``serving.popularity_weight`` with the decayed
        popularity. A user without a profile gets the vote of the heaviest clusters, or with
        ``serving.popularity_fallback`` the most popular items. ``explain`` adds every
        item's sources (``model.explanations.item_sources``)."""
        shortlists = dict(shortlists)
        wanted = {
            cluster
            for user in user_ids
            if user in profiles
            for cluster, _ in profiles[user].top_clusters
        }
        unknown = [user_id not in profiles for user_id in user_ids]
        popular_fallback = self.settings.popularity_fallback and any(unknown)
        fallback: TopClusters = ()
        if any(unknown) and not popular_fallback:
            fallback = global_top_clusters(
                self.state.cluster_masses(), self.settings.top_memberships
            )
            wanted.update(cluster for cluster, _ in fallback)
        shortlists.update(self.state.shortlists(wanted - shortlists.keys()))
        top_clusters = [
            profiles[user_id].top_clusters if user_id in profiles else fallback
            for user_id in user_ids
        ]
        count = self.settings.recommendations if n is None else n
        reranking = self._reranking(
            [profiles[user].profile if user in profiles else None for user in user_ids]
        )
        if leads:
            votes, lead_clusters = vote_with_leads(top_clusters, shortlists, seen, count, reranking)
        else:
            votes = vote_for_users(top_clusters, shortlists, seen, count, reranking)
            lead_clusters = [() for _ in votes]
        # A user who has seen most of their clusters' candidates: filled from every cluster.
        fill_short_lists(
            votes,
            lead_clusters,
            shortlists,
            seen,
            count,
            reranking,
            masses=self.state.cluster_masses,
            read_shortlists=self.state.shortlists,
            with_leads=leads,
            skipped=[popular_fallback and is_unknown for is_unknown in unknown],
        )
        popular = self._popular_lists(unknown, seen, count)
        bases = [Source.CLUSTERS] * len(user_ids)
        if popular_fallback and popular is not None:
            for row, is_unknown in enumerate(unknown):
                if is_unknown:
                    # The popular items are this user's vote: no cluster voted for them.
                    votes[row], lead_clusters[row] = popular[row], ()
                    bases[row] = Source.POPULARITY
        others: list[list[RankedList]] = [[] for _ in user_ids]
        neighbours: Neighbours = {}
        if recent is not None:
            neighbour_lists, neighbours = self._neighbour_lists(recent, seen, count)
            for row, items in enumerate(neighbour_lists):
                others[row].append(
                    RankedList(items, self.settings.neighbour_weight, Source.NEIGHBOURS)
                )
        if popular is not None:
            for row, items in enumerate(popular):
                if bases[row] is not Source.POPULARITY:
                    others[row].append(
                        RankedList(items, self.settings.popularity_weight, Source.POPULARITY)
                    )
        lead_sources: list[LeadSources] = [() for _ in user_ids]
        sources: list[tuple[tuple[SourceShare, ...], ...]] = [() for _ in user_ids]
        fused_rows = [False] * len(user_ids)
        # Nothing more to do for a list that is the vote alone, unless it is explained.
        if explain or popular_fallback or any(others):
            vote_weight = 1.0 - self.settings.neighbour_weight if recent is not None else 1.0
            for row in range(len(user_ids)):
                fusing = bool(others[row]) or bases[row] is Source.POPULARITY
                if not (fusing or explain):
                    continue
                lists = [RankedList(votes[row], vote_weight, bases[row]), *others[row]]
                fused = fuse_lists(lists[0], lists[1:], count)
                fused_rows[row] = fuses(others[row])
                votes[row] = [entry.item for entry in fused]
                if leads and fusing:
                    lead_clusters[row], lead_sources[row] = _fused_leads(
                        fused, lists, lead_clusters[row]
                    )
                if explain:
                    named = None
                    if recent is not None:
                        named = naming_recent_items(
                            {entry.item.item_id for entry in fused},
                            recent[row],
                            neighbours,
                            self.settings.neighbour_half_life_items,
                        )
                    sources[row] = tuple(item_sources(entry, lists, named) for entry in fused)
        return [
            UserRecommendations(
                user_id, items, clusters, lead, user_id in profiles, user_sources, parts, fused
            )
            for user_id, items, clusters, lead, user_sources, parts, fused in zip(
                user_ids,
                votes,
                top_clusters,
                lead_clusters,
                lead_sources,
                sources,
                fused_rows,
                strict=True,
            )
        ]

    def _neighbour_lists(
        self,
        recent: Sequence[Sequence[str]],
        seen: Sequence[Collection[str]],
        count: int,
    ) -> tuple[list[list[RecommendedItem]], Neighbours]:
        """Each user's candidates from the neighbours of their recent items, and those
        neighbours. Two reads for all the users: the recent items' neighbours, then those
        neighbours' popularity."""
        settings = self.settings
        neighbours = self.state.item_neighbours(
            {item_id for items in recent for item_id in items}, settings.neighbour_count
        )
        popularity = self.state.item_popularity(
            {other for pairs in neighbours.values() for other, _ in pairs}
        )
        lists = [
            neighbour_candidates(
                items,
                neighbours,
                popularity,
                user_seen,
                count,
                settings.neighbour_half_life_items,
            )
            for items, user_seen in zip(recent, seen, strict=True)
        ]
        return lists, neighbours

    def _popular_lists(
        self, unknown: Sequence[bool], seen: Sequence[Collection[str]], count: int
    ) -> list[list[RecommendedItem]] | None:
        """Each user's most popular unseen items, when a user's list reads them (the
        fallback for a user without a profile, the source for the others); one read."""
        settings = self.settings
        reads = [
            settings.popularity_fallback if is_unknown else settings.popularity_weight > 0.0
            for is_unknown in unknown
        ]
        if not any(reads):
            return None
        popular = self.state.most_popular_items(popular_read_size(count, seen))
        return [
            popular_candidates(popular, user_seen, count) if read else []
            for read, user_seen in zip(reads, seen, strict=True)
        ]

    def _shortlists_of(self, profiles: Iterable[UserProfile]) -> Shortlists:
        return self.state.shortlists(
            {cluster for profile in profiles for cluster, _ in profile.top_clusters}
        )

    def _reranking(self, profiles: Sequence[np.ndarray | None]) -> Reranking | None:
        if self.serving is None:
            # Only the global fallback is voted without the model, and it is not re-ranked.
            return None
        return reranking_for(self.serving, profiles, self.settings, self.state.item_features)

    @property
    def _recency(self) -> float | None:
        return self.settings.pooling_half_life_seconds

    @property
    def _timed(self) -> bool:
        """Whether an item's event time counts, beside its weight: in recency-weighted
        pooling or in decayed cluster statistics."""
        return self._recency is not None or self.settings.decay_half_life_days is not None


@dataclass(frozen=True, slots=True)
class UserWeights:
    """Each touched user's interaction weights by item, before the batch and after it, and,
    with recency-weighted pooling only, the timestamps of those interactions."""

    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    timestamps_before: dict[str, dict[str, float]]
    timestamps_after: dict[str, dict[str, float]]

    @classmethod
    def of(
        cls,
        touched: Iterable[str],
        stored_interactions: Mapping[str, list[Interaction]],
        resolution: InteractionResolution,
        with_timestamps: bool,
    ) -> UserWeights:
        touched = list(touched)
        before, after = _before_and_after(
            touched, stored_interactions, resolution, lambda row: row.weight
        )
        if not with_timestamps:
            # Nothing reads them then, and this runs for every touched user of every batch.
            return cls(before, after, {}, {})
        timestamps_before, timestamps_after = _before_and_after(
            touched, stored_interactions, resolution, lambda row: row.timestamp
        )
        return cls(before, after, timestamps_before, timestamps_after)


def _before_and_after(
    touched: Iterable[str],
    stored_interactions: Mapping[str, list[Interaction]],
    resolution: InteractionResolution,
    value: Callable[[Interaction], float],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``value`` of each touched user's interactions by item, before the batch and after."""
    before = {
        user_id: {row.item_id: value(row) for row in stored_interactions.get(user_id, ())}
        for user_id in touched
    }
    after = {user_id: dict(values) for user_id, values in before.items()}
    for row in resolution.rows_to_store:
        after[row.user_id][row.item_id] = value(row)
    return before, after


def interactions_after(
    stored_by_item: Mapping[str, Mapping[str, Interaction]], resolution: InteractionResolution
) -> dict[str, tuple[Interaction, ...]]:
    """The interactions, after the batch, of each user the batch stored rows for: the
    stored ones (by user, then item), each replaced by the batch's row for the same item."""
    by_item: dict[str, dict[str, Interaction]] = {}
    for row in resolution.rows_to_store:
        if row.user_id not in by_item:
            by_item[row.user_id] = dict(stored_by_item.get(row.user_id, _NO_ROWS))
        by_item[row.user_id][row.item_id] = row
    return {user_id: tuple(rows.values()) for user_id, rows in by_item.items()}


_NO_ROWS: Mapping[str, Interaction] = {}


class StoredPairs(Mapping[UserItem, Interaction]):
    """(user, item) -> stored row, read through rows indexed by user, then item: what the
    interaction rule asks for, without a second dictionary of every stored row keyed by
    pair (it cost a batch about as much as indexing the rows).

    >>> row = Interaction("u1", "i1", 1.0, "e1", "like", 5.0)
    >>> pairs = StoredPairs({"u1": {"i1": row}})
    >>> pairs.get(("u1", "i1")) is row, pairs.get(("u1", "i2")), len(pairs), list(pairs)
    (True, None, 1, [('u1', 'i1')])
    """

    def __init__(self, by_user: Mapping[str, Mapping[str, Interaction]]) -> None:
        self._by_user = by_user

    def get(self, pair: UserItem, default: Interaction | None = None) -> Interaction | None:
        return self._by_user.get(pair[0], _NO_ROWS).get(pair[1], default)

    def __getitem__(self, pair: UserItem) -> Interaction:
        return self._by_user.get(pair[0], _NO_ROWS)[pair[1]]

    def __iter__(self) -> Iterator[UserItem]:
        return ((user_id, item_id) for user_id, rows in self._by_user.items() for item_id in rows)

    def __len__(self) -> int:
        return sum(map(len, self._by_user.values()))


def _change_sets(
    resolution: InteractionResolution,
    attributes_changed: Iterable[str],
    profiles: Mapping[str, UserProfile],
    weights: UserWeights,
    attributes: Mapping[str, Mapping[str, str]],
    timed: bool = False,
) -> list[UserChangeSet]:
    """The users whose weights or demographics the batch changed (the encoder reads both),
    with their profile under the version. ``timed`` (recency-weighted pooling or decayed
    statistics): also the users with a newer event of an unchanged weight, whose term's
    time moved."""
    last_event_at: dict[str, float] = {}
    for row in resolution.rows_to_store:
        last_event_at[row.user_id] = max(
            last_event_at.get(row.user_id, row.timestamp), row.timestamp
        )
    changed_users = {change.user_id for change in resolution.changes} | set(attributes_changed)
    if timed:
        changed_users.update(row.user_id for row in resolution.rows_to_store)
    return [
        UserChangeSet(
            user_id,
            profiles.get(user_id),
            weights.before[user_id],
            weights.after[user_id],
            attributes.get(user_id, {}),
            _latest(
                None if user_id not in profiles else profiles[user_id].last_event_at,
                last_event_at.get(user_id),
            ),
            weights.timestamps_before.get(user_id, {}),
            weights.timestamps_after.get(user_id, {}),
        )
        for user_id in sorted(changed_users)
    ]


def events_of_histories(histories: Sequence[UserHistory]) -> list[AcceptedInteraction]:
    """The histories as events to learn (user after user, each in its own order; times from
    the history, else the position), with their demographics."""
    events = []
    for history in histories:
        for position, (item_id, weight) in enumerate(history.interactions):
            timestamp = (
                float(position)
                if history.timestamps is None
                else float(history.timestamps[position])
            )
            event = InteractionEvent(
                event_id=f"{history.user_id}:{position:09d}",
                user_id=history.user_id,
                item_id=item_id,
                type="history",
                timestamp=timestamp,
                user_attributes=dict(history.attributes),
            )
            source = SourceEvent("history", 0, position, timestamp)
            events.append(AcceptedInteraction(event, weight, source))
    return events


def _recent_of_history(history: UserHistory, count: int) -> list[str]:
    """A history's ``count`` most recent items, newest first: by its times when it has
    them, else its order (a repeated item counts where it was taken last)."""
    last_position = {
        item_id: position for position, (item_id, _) in enumerate(history.interactions)
    }
    times = history.timestamps

    def when(item_id: str) -> tuple[float, int]:
        position = last_position[item_id]
        return (0.0 if times is None else float(times[position]), position)

    return list(reversed(sorted(last_position, key=when)[-count:])) if count > 0 else []


def _fused_leads(
    fused: Sequence[FusedItem], lists: Sequence[RankedList], voted_leads: LeadClusters
) -> tuple[LeadClusters, LeadSources]:
    """The lead clusters and lead sources of a fused list (``lists`` in ``fuse_lists``'s
    order): an item the vote put there keeps its lead cluster, any other has none (None);
    each item's lead source is the list with the largest share of its fused score, with
    that share rounded as a lead cluster's."""
    by_cluster = lists[0].source is Source.CLUSTERS and bool(voted_leads)
    clusters = tuple(
        voted_leads[entry.position]
        if by_cluster and entry.position is not None and entry.position < len(voted_leads)
        else None
        for entry in fused
    )
    leads = tuple(
        (lists[lead].source.value, round(entry.shares[lead], LEAD_SHARE_DECIMALS))
        for entry in fused
        for lead in (entry.lead,)
    )
    return clusters, leads


def _latest(first: float | None, second: float | None) -> float | None:
    known = [value for value in (first, second) if value is not None]
    return max(known) if known else None


__all__ = [
    "EfficientRecStream",
    "LearnedBatch",
    "Shortlist",
    "StreamState",
    "UserRecommendations",
    "UserWeights",
    "events_of_histories",
    "interactions_after",
]
