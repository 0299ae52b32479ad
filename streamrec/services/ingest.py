"""Applying one polled batch: the single database transaction at the heart of the pipeline.

``IngestService.apply(records)`` validates the records, then in ONE transaction:

1. reads the stored next offsets of the batch's partitions; records below them were applied
   by an earlier run (a replay after a crash) and do not touch state again;
2. upserts item features (the newest item event wins) and drops their cached vectors;
3. looks the batch's interaction event ids up among those stored within the deduplication
   window (``streamrec.services.event_ids``): an id seen before with other content is
   dead-lettered as ``event_id_reused`` and never applied; then stores the new ids, and the
   interactions by the rule in ``streamrec.model.interaction_rule`` (a repeated event changes
   nothing, an older event never overwrites a newer weight);
4. reads the active and the building version in one statement;
5. under the ACTIVE version: records the prequential hit of each applied event (was its item
   among the user's recommendations as they stood before the batch), moves each touched
   user's pooled sums, profile and top-M memberships, adds the exact cluster-statistic
   deltas, refreshes the shortlists of the affected clusters (at most once per
   ``model.shortlist_refresh_seconds``, see ``streamrec.model.shortlist_refresh``), and
   votes the touched users' recommendations; the hits feed the consumer's drift detector;
6. while a version is BUILDING (a rebuild is under way): applies the same user changes to it
   (``streamrec.services.rebuild.BuildingVersionUpdater``), so the new version misses no event;
7. stores the new dead letters and the next offsets, deletes a bounded number of event ids
   older than the window when due, and commits.

It returns what is to be published (a recommendation per touched user, every dead letter of
the batch, a drift signal when the hit rate fell) and the offsets to commit to Kafka. Users
touched only by already-applied records get their CURRENT recommendations again: state is
exactly-once, outputs at-least-once.

Without an active model version, interactions, items, attributes, dead letters and offsets are
still stored, but no user state exists and nothing is recommended; once a model is active a
user's state is built from their whole interaction set at their next event (or by a rebuild).

>>> from streamrec.config import Settings
>>> from streamrec.storage.memory import create_memory_database
>>> from streamrec.validation import encode_interaction
>>> from streamrec.events import InteractionEvent
>>> service = IngestService(Settings(), create_memory_database())
>>> event = InteractionEvent("e1", "u1", "i1", "click", timestamp=10.0)
>>> records = [SourceRecord("interactions", 0, 0, b"u1", encode_interaction(event)),
...            SourceRecord("interactions", 0, 1, b"u1", b"{oops")]
>>> result = service.apply(records)
>>> result.counters.interactions_applied, dict(result.counters.dead_letters_by_reason)
(1, {'invalid_json': 1})
>>> result.next_offsets
{('interactions', 0): 2}
>>> service.resume_offsets(["interactions"])  # stored, but its outputs not acknowledged yet
{('interactions', 0): 0}
>>> service.acknowledge(result.next_offsets)
>>> service.resume_offsets(["interactions"])
{('interactions', 0): 2}
>>> service.apply(records).counters.records_already_applied
2
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from streamrec.config import ModelSettings, Settings
from streamrec.drift import DriftSignal, HitRateDriftDetector
from streamrec.events import InteractionEvent, RecommendationMessage, SourceEvent
from streamrec.model.contributions import ClusterDeltaColumns, batch_delta_columns
from streamrec.model.interaction_rule import InteractionResolution, resolve_interactions
from streamrec.model.recommending import (
    Reranking,
    global_top_clusters,
    recommended_item_ids,
    reranking_for,
    vote_with_leads,
)
from streamrec.model.serving import ModelCache, ServingModel
from streamrec.model.shortlist_refresh import RefreshPlan, ShortlistRefreshSchedule
from streamrec.model.user_attributes import EventKey, merge_attributes
from streamrec.model.user_states import UserChangeSet, update_user_states
from streamrec.offsets import OffsetReset, OffsetResetChoice, OutOfRange, StoredOffsets
from streamrec.services.batch import BatchResult, SourceRecord, TopicPartition
from streamrec.services.event_ids import (
    PRUNE_LIMIT,
    DeduplicationWindow,
    EventIdCheck,
    check_event_ids,
)
from streamrec.services.offset_resets import reset_offsets
from streamrec.services.rebuild import BuildingVersionUpdater
from streamrec.services.recommending import refresh_shortlists
from streamrec.services.triage import TriagedBatch, triage
from streamrec.services.user_cache import KnownUser, UserCache
from streamrec.state import Interaction, UserProfile
from streamrec.storage.repositories.users import new_state_token
from streamrec.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

Shortlists = dict[int, list[tuple[str, float]]]


@dataclass(frozen=True, slots=True)
class _TouchedUser:
    """A user with a valid interaction in the batch, and the record that reported it last."""

    user_id: str
    source: SourceEvent


class IngestService:
    """Applies polled batches to the database, one transaction per batch.

    ``consumer_group`` keys the stored offsets (default: the configured consumer group).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        consumer_group: str | None = None,
        clock: Callable[[], float] = time.time,
        model_cache: ModelCache | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._group = consumer_group or settings.kafka.consumer_group
        self._clock = clock
        self._models = model_cache or ModelCache()
        self._building = BuildingVersionUpdater(settings.model)
        self._shortlist_refresh = ShortlistRefreshSchedule(settings.model.shortlist_refresh_seconds)
        self._known_users = UserCache(settings.consumer.user_cache_size)
        self._deduplication = DeduplicationWindow(settings.events.deduplication_retention_days)
        # One detector per consumer: each sees the users of its own partitions.
        self._drift = HitRateDriftDetector(
            min_interval_seconds=settings.trainer.drift_min_interval_seconds, clock=clock
        )
        if settings.model.decay_half_life_days is not None:
            logger.warning(
                "model.decay_half_life_days is set, but the consumer keeps undecayed "
                "statistics: forward decay needs a landmark stored with the model version"
            )

    @property
    def kept_users(self) -> int:
        """How many users' interactions and states this consumer keeps in memory."""
        return len(self._known_users)

    def resume_offsets(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        """Where a consumer resumes each partition of ``topics`` with a stored offset: the
        lower of the stored and the acknowledged offset. Records between the two were
        applied but their outputs not acknowledged; reading them again skips them for state
        and publishes their users' current recommendations."""
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            return {
                (topic, partition): offset
                for topic in sorted(set(topics))
                for partition, offset in uow.offsets.resume_offsets(self._group, topic).items()
            }

    def acknowledge(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        """Record that the broker acknowledged the outputs of the records below
        ``next_offsets`` (a batch's ``BatchResult.next_offsets``)."""
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            for topic, offsets in _by_topic(next_offsets):
                uow.offsets.acknowledge(self._group, topic, offsets)
            uow.commit()

    def stored_offsets(self, topics: Iterable[str]) -> dict[TopicPartition, StoredOffsets]:
        """The next and acknowledged offsets of each partition of ``topics`` with a row."""
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            return {
                (topic, partition): offsets
                for topic in sorted(set(topics))
                for partition, offsets in uow.offsets.stored(self._group, topic).items()
            }

    def reset_offsets(
        self, outside: Sequence[OutOfRange], choice: OffsetResetChoice
    ) -> list[OffsetReset]:
        """Move the partitions whose stored position lies outside the log to where the
        operator chose, and record it (``streamrec.services.offset_resets``)."""
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            resets = reset_offsets(uow, self._group, outside, choice, now=self._clock())
            uow.commit()
        return resets

    def apply(self, records: Sequence[SourceRecord]) -> BatchResult:
        """Apply ``records`` (in the order the broker delivered them) in one transaction."""
        try:
            return self._apply(records)
        except BaseException:
            # A commit that failed on the way back may still have reached the database, so
            # no kept user is trusted after a failure: they are all read again.
            self._known_users.clear()
            raise

    def _apply(self, records: Sequence[SourceRecord]) -> BatchResult:
        now = self._clock()
        batch = triage(records, self._settings, received_at=now)
        result = BatchResult(dead_letters=batch.dead_letters)
        result.next_offsets = _next_offsets(records)
        counters = result.counters
        counters.records = len(records)
        counters.dead_letters_by_reason.update(letter.reason for letter in batch.dead_letters)
        refresh_plan: RefreshPlan | None = None
        written: dict[str, UserProfile] = {}
        state_token = new_state_token()
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            stored = self._claim_offsets(uow, records)
            fresh = _FreshRecords(stored)
            counters.records_already_applied = sum(not fresh(record) for record in records)
            checked = self._check_event_ids(uow, batch, fresh, now)
            batch = checked.batch
            result.dead_letters = batch.dead_letters
            counters.dead_letters_by_reason.update(letter.reason for letter in checked.reused)

            items = [accepted.item for accepted in batch.items if fresh(accepted.record)]
            if items:
                counters.items_upserted = uow.items.save_many(items)
                self._models.forget_items(item.item_id for item in items)
                self._building.forget_items(item.item_id for item in items)

            touched = _touched_users(batch)
            # One statement: a flip between two reads would apply this batch to the new
            # version twice or not at all.
            versions = uow.builds.serving_versions()
            result.model_version = versions.active
            stored_interactions, states = self._read_users(uow, touched, versions.active)
            resolution = resolve_interactions(
                [accepted.interaction for accepted in batch.interactions if fresh(accepted.record)],
                {
                    (row.user_id, row.item_id): row
                    for rows in stored_interactions.values()
                    for row in rows
                },
            )
            counters.interactions_applied = resolution.applied
            counters.interactions_ignored = resolution.ignored
            attributes, attributes_changed, users_with_rows = self._save_attributes(
                uow, batch, fresh, touched, states
            )
            # Nothing in the batch reads the interactions (or the event ids) back: the
            # database stores them while the weights and change sets are worked out.
            with uow.overlapped_writes():
                uow.interactions.save_many(resolution.rows_to_store)
                uow.processed_events.add_many(checked.first_seen)
                weights = _UserWeights.of(
                    touched,
                    stored_interactions,
                    resolution,
                    with_timestamps=self._settings.model.pooling_half_life_seconds is not None,
                )
                change_sets = _change_sets(
                    resolution,
                    attributes_changed,
                    states,
                    weights,
                    attributes,
                    self._settings.model.pooling_half_life_seconds,
                )
            if versions.active is not None:
                serving = self._models.serving(versions.active, uow.models.get)
                recommended = self._update_and_recommend(
                    uow,
                    state_token,
                    serving,
                    touched,
                    states,
                    weights,
                    change_sets,
                    resolution,
                    users_with_rows,
                    now,
                )
                result.recommendations = recommended.messages
                result.prequential_hits = recommended.hits
                refresh_plan = recommended.refresh_plan
                written = recommended.states
                counters.users_updated = len(change_sets)
                result.drift_signals = self._detect_drift(result.prequential_hits)
            if versions.building is not None:
                self._building.apply(uow, versions.building, change_sets)
            uow.dead_letters.add_many(
                rejected.letter for rejected in batch.rejected if fresh(rejected.record)
            )
            self._save_offsets(uow, [record for record in records if fresh(record)])
            self._prune_event_ids(uow, now)
            uow.commit()
        if refresh_plan is not None:
            self._shortlist_refresh.record(refresh_plan)
        if result.model_version is None:
            self._known_users.clear()
        else:
            self._keep_users(
                result.model_version, state_token, written, stored_interactions, resolution
            )
        return result

    # Steps of apply ----------------------------------------------------------------------

    def _keep_users(
        self,
        version: int,
        state_token: int,
        states: Mapping[str, UserProfile],
        stored_interactions: Mapping[str, list[Interaction]],
        resolution: InteractionResolution,
    ) -> None:
        """After the commit: keep the users whose states the batch wrote, and move the kept
        interactions of users the batch stored rows for without a new state (a newer event
        with the same weight changes no state, but the next duplicate of it must be
        recognised)."""
        interactions_after = _interactions_after(stored_interactions, resolution)
        self._known_users.keep(
            version,
            state_token,
            {
                user_id: KnownUser(
                    interactions_after.get(user_id) or tuple(stored_interactions.get(user_id, ())),
                    state,
                )
                for user_id, state in states.items()
            },
        )
        self._known_users.replace_interactions(
            {
                user_id: interactions
                for user_id, interactions in interactions_after.items()
                if user_id not in states
            }
        )

    def _check_event_ids(
        self,
        uow: UnitOfWork,
        batch: TriagedBatch,
        fresh: Callable[[SourceRecord], bool],
        now: float,
    ) -> EventIdCheck:
        """Judge the batch's interaction event ids against the ids stored within the
        deduplication window (one lookup) and against each other
        (``streamrec.services.event_ids``): a reused id leaves the batch as a dead letter."""
        stored = uow.processed_events.get_many(
            accepted.interaction.event.event_id for accepted in batch.interactions
        )
        return check_event_ids(
            batch,
            fresh,
            stored,
            received_at=now,
            max_payload_bytes=self._settings.events.max_dead_letter_payload_bytes,
        )

    def _prune_event_ids(self, uow: UnitOfWork, now: float) -> None:
        """When due, delete up to ``PRUNE_LIMIT`` event ids received before the
        deduplication window."""
        if not self._deduplication.prune_due(now):
            return
        deleted = uow.processed_events.prune(
            received_before=self._deduplication.received_before(now), limit=PRUNE_LIMIT
        )
        self._deduplication.pruned(deleted, now)

    def _read_users(
        self, uow: UnitOfWork, touched: Collection[str], version: int | None
    ) -> tuple[dict[str, list[Interaction]], dict[str, UserProfile]]:
        """The touched users' stored interactions, and their states under ``version``: the
        copies this consumer kept of the users it wrote (when still current) and the rest
        read from the database."""
        known = (
            {}
            if version is None
            else self._known_users.current(
                touched, version, lambda user_ids: uow.users.state_tokens(user_ids, version)
            )
        )
        unknown = [user_id for user_id in touched if user_id not in known]
        interactions = {user_id: list(user.interactions) for user_id, user in known.items()}
        interactions.update(uow.interactions.for_users(unknown))
        if version is None:
            return interactions, {}
        states = {user_id: user.state for user_id, user in known.items()}
        states.update(uow.users.get_many(unknown, version))
        return interactions, states

    def _claim_offsets(
        self, uow: UnitOfWork, records: Sequence[SourceRecord]
    ) -> dict[TopicPartition, int]:
        """The stored offsets of the batch's partitions, locked until commit (see
        OffsetRepository.claim: this is what keeps a zombie consumer from double-counting)."""
        partitions_by_topic: dict[str, set[int]] = {}
        for record in records:
            partitions_by_topic.setdefault(record.topic, set()).add(record.partition)
        return {
            (topic, partition): offset
            for topic, partitions in sorted(partitions_by_topic.items())
            for partition, offset in uow.offsets.claim(self._group, topic, partitions).items()
        }

    def _save_offsets(self, uow: UnitOfWork, fresh_records: Sequence[SourceRecord]) -> None:
        for topic, next_offsets in _by_topic(_next_offsets(fresh_records)):
            uow.offsets.save(self._group, topic, next_offsets)

    def _save_attributes(
        self,
        uow: UnitOfWork,
        batch: TriagedBatch,
        fresh: Callable[[SourceRecord], bool],
        touched: dict[str, _TouchedUser],
        states: Mapping[str, UserProfile],
    ) -> tuple[dict[str, dict[str, str]], set[str], set[str]]:
        """Merge the demographics the batch's events carry over the stored ones (per attribute,
        the newest event wins: streamrec.model.user_attributes); return every
        touched user's attributes, the users whose attributes changed, and the touched users
        that now have a user row. The stored demographics of users with a ``states`` entry
        came with it (read from their user row); only the others are read here."""
        attributes = {user_id: dict(state.attributes) for user_id, state in states.items()}
        attributes.update(
            uow.users.attributes_many(user_id for user_id in touched if user_id not in states)
        )
        users_with_rows = set(attributes)
        events_by_user: dict[str, list[InteractionEvent]] = {}
        for accepted in batch.interactions:
            event = accepted.interaction.event
            if event.user_attributes and fresh(accepted.record):
                events_by_user.setdefault(event.user_id, []).append(event)
        # Only users whose events name attributes: most batches read nothing more here.
        stored_keys = uow.users.attribute_event_keys_many(events_by_user) if events_by_user else {}
        changed: set[str] = set()  # whose values changed: the encoder reads them
        to_save: dict[str, dict[str, str]] = {}
        keys_to_save: dict[str, dict[str, EventKey]] = {}
        for user_id, events in events_by_user.items():
            stored = stored_keys.get(user_id, {})
            merged = merge_attributes(attributes.get(user_id, {}), stored, events)
            if merged.attributes != attributes.get(user_id):
                changed.add(user_id)
            if user_id in changed or merged.event_keys != stored:
                attributes[user_id] = merged.attributes
                to_save[user_id] = merged.attributes
                keys_to_save[user_id] = merged.event_keys
        if to_save:
            uow.users.save_attributes(to_save, keys_to_save)
            users_with_rows.update(to_save)
        touched_attributes = {user_id: attributes.get(user_id, {}) for user_id in touched}
        return touched_attributes, changed, users_with_rows

    def _update_and_recommend(
        self,
        uow: UnitOfWork,
        state_token: int,
        serving: ServingModel,
        touched: dict[str, _TouchedUser],
        states: Mapping[str, UserProfile],
        weights: _UserWeights,
        change_sets: Sequence[UserChangeSet],
        resolution: InteractionResolution,
        users_with_rows: Collection[str],
        now: float,
    ) -> _Recommended:
        """Update the changed users under the active version (their states written with
        ``state_token``) and vote the touched users' recommendations; also return the
        prequential hit indicators of the batch, its shortlist refresh and the new states."""
        model_settings = self._settings.model
        version = serving.version
        # The shortlists as the users' latest recommendations saw them, read before this
        # batch's statistics move them; the votes below reuse the ones the batch leaves alone.
        known_shortlists = uow.clusters.shortlists(
            version, {cluster for state in states.values() for cluster, _ in state.top_clusters}
        )
        hits = _prequential_hits(
            resolution.applied_pairs,
            states,
            known_shortlists,
            weights,
            model_settings,
            lambda profiles: reranking_for(serving, profiles, model_settings, uow.items.get_many),
        )
        updates = update_user_states(
            serving,
            change_sets,
            model_settings.top_memberships,
            uow.items.get_many,
            model_settings.pooling_half_life_seconds,
        )
        # Nothing in the batch reads the states back: the database stores them while the
        # cluster deltas are worked out (pure computation, no statement).
        with uow.overlapped_writes():
            uow.users.save_many(
                (update.after for update in updates),
                users_with_rows=users_with_rows,
                state_token=state_token,
            )
            precision = serving.model.architecture.statistics_membership_precision
            deltas = batch_delta_columns([update.transition(precision) for update in updates])
        refresh_plan, refreshed = self._apply_statistics(uow, version, deltas)
        shortlists = {**known_shortlists, **refreshed}

        current: dict[str, UserProfile] = {**states, **{u.after.user_id: u.after for u in updates}}
        wanted_clusters = {
            cluster for state in current.values() for cluster, _ in state.top_clusters
        }
        needs_global = any(user_id not in current for user_id in touched)
        masses = uow.clusters.masses(version) if needs_global else {}
        fallback = global_top_clusters(masses, model_settings.top_memberships)
        wanted_clusters.update(cluster for cluster, _ in fallback)
        shortlists.update(uow.clusters.shortlists(version, wanted_clusters - shortlists.keys()))

        top_clusters = [
            fallback if user_id not in current else current[user_id].top_clusters
            for user_id in touched
        ]
        profiles = [current[user_id].profile if user_id in current else None for user_id in touched]
        votes, leads = vote_with_leads(
            top_clusters,
            shortlists,
            [weights.after[user_id] for user_id in touched],
            model_settings.recommendations,
            reranking_for(serving, profiles, model_settings, uow.items.get_many),
        )
        messages = [
            RecommendationMessage(
                user_id=user.user_id,
                items=tuple(items),
                model_version=version,
                top_clusters=clusters,
                generated_at=now,
                source=user.source,
                lead_clusters=lead,
            )
            for user, clusters, items, lead in zip(
                touched.values(), top_clusters, votes, leads, strict=True
            )
        ]
        return _Recommended(
            messages, hits, refresh_plan, {update.after.user_id: update.after for update in updates}
        )

    def _detect_drift(self, hits: Iterable[bool]) -> list[DriftSignal]:
        return [signal for hit in hits if (signal := self._drift.learn_one(hit)) is not None]

    def _apply_statistics(
        self, uow: UnitOfWork, version: int, deltas: ClusterDeltaColumns
    ) -> tuple[RefreshPlan | None, Shortlists]:
        """Add the batch's cluster deltas and refresh the shortlists the schedule says are
        due; return the refresh plan and the refreshed shortlists."""
        if not deltas:
            return None, {}
        uow.clusters.add_delta_columns(
            version,
            clusters=deltas.clusters,
            item_ids=deltas.item_ids,
            liked=deltas.liked,
            rated=deltas.rated,
            weighted=deltas.weighted,
            mass_clusters=deltas.mass_clusters,
            mass_changes=deltas.mass_changes,
        )
        plan = self._shortlist_refresh.plan(
            version, deltas.affected_clusters(), lambda: uow.clusters.masses(version)
        )
        return plan, refresh_shortlists(uow, version, plan.refresh, self._settings.model)


@dataclass(frozen=True, slots=True)
class _Recommended:
    """What a batch publishes, its prequential hits, its shortlist refresh (recorded in
    the schedule once the batch commits), and the states it wrote, by user."""

    messages: list[RecommendationMessage]
    hits: list[bool]
    refresh_plan: RefreshPlan | None
    states: dict[str, UserProfile]


@dataclass(frozen=True, slots=True)
class _UserWeights:
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
    ) -> _UserWeights:
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


def _interactions_after(
    stored_interactions: Mapping[str, list[Interaction]], resolution: InteractionResolution
) -> dict[str, tuple[Interaction, ...]]:
    """The interactions, after the batch, of each user the batch stored rows for: the
    stored ones, each replaced by the batch's row for the same item."""
    by_item: dict[str, dict[str, Interaction]] = {}
    for row in resolution.rows_to_store:
        if row.user_id not in by_item:
            stored = stored_interactions.get(row.user_id, ())
            by_item[row.user_id] = {interaction.item_id: interaction for interaction in stored}
        by_item[row.user_id][row.item_id] = row
    return {user_id: tuple(rows.values()) for user_id, rows in by_item.items()}


def _change_sets(
    resolution: InteractionResolution,
    attributes_changed: Iterable[str],
    states: Mapping[str, UserProfile],
    weights: _UserWeights,
    attributes: Mapping[str, Mapping[str, str]],
    pooling_half_life_seconds: float | None = None,
) -> list[UserChangeSet]:
    """The users whose weights or demographics the batch changed (the encoder reads both),
    with their state under the active version (none without an active version: the building
    version reads its own). With recency-weighted pooling, also the users with a newer event
    of an unchanged weight: its term's recency factor moved."""
    last_event_at = _last_event_times(resolution.rows_to_store)
    changed_users = {change.user_id for change in resolution.changes} | set(attributes_changed)
    if pooling_half_life_seconds is not None:
        changed_users.update(row.user_id for row in resolution.rows_to_store)
    return [
        UserChangeSet(
            user_id,
            states.get(user_id),
            weights.before[user_id],
            weights.after[user_id],
            attributes.get(user_id, {}),
            _latest(
                None if user_id not in states else states[user_id].last_event_at,
                last_event_at.get(user_id),
            ),
            weights.timestamps_before.get(user_id, {}),
            weights.timestamps_after.get(user_id, {}),
        )
        for user_id in sorted(changed_users)
    ]


def _prequential_hits(
    applied_pairs: Sequence[tuple[str, str]],
    states: Mapping[str, UserProfile],
    shortlists: Shortlists,
    weights: _UserWeights,
    model_settings: ModelSettings,
    reranking: Callable[[Sequence[np.ndarray | None]], Reranking | None],
) -> list[bool]:
    """For each applied event of a user with a state before the batch: was its item among the
    user's recommendations as they stood before the batch? Users new to the model had no
    recommendations of their own; counting their events as misses would make a change in the
    share of new users look like drift."""
    known = sorted({user_id for user_id, _ in applied_pairs if user_id in states})
    if not known:
        return []
    recommended = dict(
        zip(
            known,
            recommended_item_ids(
                [states[user_id].top_clusters for user_id in known],
                shortlists,
                [weights.before[user_id] for user_id in known],
                model_settings.recommendations,
                reranking([states[user_id].profile for user_id in known]),
            ),
            strict=True,
        )
    )
    return [
        item_id in recommended[user_id]
        for user_id, item_id in applied_pairs
        if user_id in recommended
    ]


class _FreshRecords:
    """Tells whether a record is at or past its partition's stored next offset."""

    def __init__(self, stored: Mapping[TopicPartition, int]) -> None:
        self._stored = stored

    def __call__(self, record: SourceRecord) -> bool:
        return record.offset >= self._stored.get(record.topic_partition, 0)


def _by_topic(offsets: Mapping[TopicPartition, int]) -> list[tuple[str, dict[int, int]]]:
    """(topic, {partition: offset}) pairs in topic order."""
    by_topic: dict[str, dict[int, int]] = {}
    for (topic, partition), offset in offsets.items():
        by_topic.setdefault(topic, {})[partition] = offset
    return sorted(by_topic.items())


def _next_offsets(records: Iterable[SourceRecord]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        partition = record.topic_partition
        offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
    return offsets


def _touched_users(batch: TriagedBatch) -> dict[str, _TouchedUser]:
    """Users with a valid interaction in the batch (applied or not), by first appearance,
    each with the source of their last record."""
    touched: dict[str, _TouchedUser] = {}
    for accepted in batch.interactions:
        interaction = accepted.interaction
        touched[interaction.event.user_id] = _TouchedUser(
            interaction.event.user_id, interaction.source
        )
    return touched


def _last_event_times(rows: Iterable[Interaction]) -> dict[str, float]:
    latest: dict[str, float] = {}
    for row in rows:
        latest[row.user_id] = max(latest.get(row.user_id, row.timestamp), row.timestamp)
    return latest


def _latest(first: float | None, second: float | None) -> float | None:
    known = [value for value in (first, second) if value is not None]
    return max(known) if known else None
