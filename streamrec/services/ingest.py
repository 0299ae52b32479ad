"""Applying one polled batch: the single database transaction at the heart of the pipeline.

``IngestService.apply(records)`` validates the records, then in ONE transaction:

1. reads the stored next offsets of the batch's partitions; records below them were applied
   already (a replay after a crash) and do not touch state again;
2. upserts item features (the newest item event wins) and drops their cached vectors;
3. looks the batch's interaction event ids up among those stored within the deduplication
   window (``streamrec.services.event_ids``): an id seen before with other content is
   dead-lettered as ``event_id_reused`` and never applied;
4. reads the active and the building version in one statement;
5. hands the fresh interactions to the model, ``streamrec.model.stream.EfficientRecStream``
   over the batch's transaction (``streamrec.services.stream_state``), under the ACTIVE
   version: it stores them by the interaction rule (a repeated event changes nothing, an
   older event never overwrites a newer weight) with their demographics, records the
   prequential hit of each applied event (was its item among the user's recommendations as
   they stood before the batch), moves each touched user's pooled sums, profile and top-M
   memberships, adds the exact cluster-statistic deltas, refreshes the shortlists of the
   affected clusters (at most once per ``serving.shortlist_refresh_seconds``), and votes the
   touched users' recommendations; the hits feed the consumer's drift detector. The same
   object, over an in-memory state, is what ``streamrec eval`` and the in-process stream
   measure;
6. while a version is BUILDING (a rebuild is under way): applies the same user changes to it
   (``streamrec.services.rebuild.BuildingVersionUpdater``), so the new version misses no event;
7. stores the new dead letters and the next offsets, deletes a bounded number of event ids
   older than the window when due, and commits.

It returns what is to be published, as outbound messages built here
(``streamrec.services.outbound``): a recommendation per touched user, every dead letter of
the batch (falling back to its headers alone if the broker refuses the copy), and a ``train``
command with trigger ``drift`` on the control topic when the hit rate fell; and the offsets
to commit to Kafka. The consumer loop sends them without knowing what they are. Users touched
only by already-applied records get their CURRENT recommendations again: state is
exactly-once, outputs at-least-once.

Without an active model version, interactions, items, attributes, dead letters and offsets are
still stored, but no user state exists and nothing is recommended; once a model is active a
user's state is built from their whole interaction set at their next event (or by a rebuild).

>>> from streamrec.config import Settings
>>> from streamrec.storage.memory import create_memory_database
>>> from streamrec.wire import encode_interaction
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.drift import DriftSignal, HitRateDriftDetector
from streamrec.events import RecommendationMessage, SourceEvent
from streamrec.model.serving import ModelCache
from streamrec.model.shortlist_refresh import ShortlistRefreshSchedule
from streamrec.model.stream import EfficientRecStream, LearnedBatch
from streamrec.offsets import OffsetReset, OffsetResetChoice, OutOfRange, StoredOffsets
from streamrec.services.batch import BatchResult, SourceRecord, TopicPartition
from streamrec.services.event_ids import (
    PRUNE_LIMIT,
    DeduplicationWindow,
    EventIdCheck,
    check_event_ids,
)
from streamrec.services.offset_resets import reset_offsets
from streamrec.services.outbound import (
    OutboundMessage,
    dead_letter_message,
    drift_train_command,
    recommendation_message,
    train_command_message,
)
from streamrec.services.rebuild import BuildingVersionUpdater
from streamrec.services.stream_state import DatabaseStreamState
from streamrec.services.triage import TriagedBatch, triage
from streamrec.services.user_cache import KnownUser, UserCache
from streamrec.storage.repositories.users import new_state_token
from streamrec.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)


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
        self._building = BuildingVersionUpdater(settings.serving)
        self._shortlist_refresh = ShortlistRefreshSchedule(
            settings.serving.shortlist_refresh_seconds
        )
        self._known_users = UserCache(settings.consumer.user_cache_size)
        self._deduplication = DeduplicationWindow(settings.events.deduplication_retention_days)
        # One detector per consumer: each sees the users of its own partitions.
        self._drift = HitRateDriftDetector(
            min_interval_seconds=settings.trainer.drift_min_interval_seconds, clock=clock
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
        state_token = new_state_token()
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            stored = self._claim_offsets(uow, records)
            fresh = _FreshRecords(stored)
            counters.records_already_applied = sum(not fresh(record) for record in records)
            checked = self._check_event_ids(uow, batch, fresh, now)
            batch = checked.batch
            result.dead_letters = batch.dead_letters
            counters.dead_letters_by_reason.update(letter.reason for letter in checked.reused)
            counters.items_upserted = self._upsert_items(uow, batch, fresh)

            # One statement: a flip between two reads would apply this batch to the new
            # version twice or not at all.
            versions = uow.builds.serving_versions()
            result.model_version = versions.active
            stream, state = self._stream(uow, versions.active, state_token)
            # Nothing in the batch reads the event ids back: sent with the interactions.
            state.queue_write(lambda: uow.processed_events.add_many(checked.first_seen))
            touched = _touched_users(batch)
            learned = stream.learn_many(
                [accepted.interaction for accepted in batch.interactions if fresh(accepted.record)],
                recommend_for=list(touched),
            )
            state.finish()
            counters.interactions_applied = learned.applied
            counters.interactions_ignored = learned.ignored
            if versions.active is not None:
                result.recommendations = _messages(learned, touched, versions.active, now)
                result.prequential_hits = learned.hits
                counters.users_updated = len(learned.change_sets)
                result.drift_signals = self._detect_drift(result.prequential_hits)
            if versions.building is not None:
                self._building.apply(uow, versions.building, learned.change_sets)
            uow.dead_letters.add_many(
                rejected.letter for rejected in batch.rejected if fresh(rejected.record)
            )
            self._save_offsets(uow, [record for record in records if fresh(record)])
            self._prune_event_ids(uow, now)
            uow.commit()
        stream.record(learned)
        if result.model_version is None:
            self._known_users.clear()
        else:
            self._keep_users(result.model_version, state_token, learned)
        result.outbound = self._outbound(result, now)
        return result

    # Steps of apply ----------------------------------------------------------------------

    def _stream(
        self, uow: UnitOfWork, version: int | None, state_token: int
    ) -> tuple[EfficientRecStream, DatabaseStreamState]:
        """The model over this batch's transaction, under the active version (None: none
        is active, and the batch only stores)."""
        state = DatabaseStreamState(uow, version, self._known_users, state_token=state_token)
        serving = None if version is None else self._models.serving(version, uow.models.get)
        stream = EfficientRecStream(
            serving, self._settings.serving, state, refresh=self._shortlist_refresh
        )
        return stream, state

    def _upsert_items(
        self, uow: UnitOfWork, batch: TriagedBatch, fresh: Callable[[SourceRecord], bool]
    ) -> int:
        """Store the batch's item updates and drop the cached vectors of those items."""
        items = [accepted.item for accepted in batch.items if fresh(accepted.record)]
        if not items:
            return 0
        upserted = uow.items.save_many(items)
        self._models.forget_items(item.item_id for item in items)
        self._building.forget_items(item.item_id for item in items)
        return upserted

    def _keep_users(self, version: int, state_token: int, learned: LearnedBatch) -> None:
        """After the commit: keep the users whose states the batch wrote, and move the kept
        interactions of users the batch stored rows for without a new state (a newer event
        with the same weight changes no state, but the next duplicate of it must be
        recognised)."""
        stored = learned.stored_interactions
        states = learned.profiles_written
        after = learned.interactions_after()
        self._known_users.keep(
            version,
            state_token,
            {
                user_id: KnownUser(after.get(user_id) or tuple(stored.get(user_id, ())), state)
                for user_id, state in states.items()
            },
        )
        self._known_users.replace_interactions(
            {
                user_id: interactions
                for user_id, interactions in after.items()
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

    def _detect_drift(self, hits: Iterable[bool]) -> list[DriftSignal]:
        return [signal for hit in hits if (signal := self._drift.learn_one(hit)) is not None]

    def _outbound(self, result: BatchResult, now: float) -> list[OutboundMessage]:
        """What the stored batch publishes, in order: the recommendations, the dead letters,
        then a train command per drift signal (made once here, so that a retried
        publication repeats the same request ids)."""
        topics = self._settings.topics
        commands = [drift_train_command(signal, now) for signal in result.drift_signals]
        for command in commands:
            # Information, not a warning: an early run is how the pipeline answers a fall of
            # its hit rate (a frozen model on a moving stream always shows one), and nothing
            # is wrong for an operator to fix.
            logger.info("asking the trainer for an early run: %s", command.reason)
        return [
            *(recommendation_message(topics.recommendations, m) for m in result.recommendations),
            *(dead_letter_message(topics.dead_letters, letter) for letter in result.dead_letters),
            *(train_command_message(topics.control, command) for command in commands),
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


def _messages(
    learned: LearnedBatch, touched: Mapping[str, _TouchedUser], version: int, now: float
) -> list[RecommendationMessage]:
    """One recommendation message per touched user, naming the record that reported the
    user last."""
    return [
        RecommendationMessage(
            user_id=user.user_id,
            items=tuple(user.items),
            model_version=version,
            top_clusters=user.top_clusters,
            generated_at=now,
            source=touched[user.user_id].source,
            lead_clusters=user.lead_clusters,
            lead_sources=user.lead_sources,
        )
        for user in learned.recommendations
    ]
