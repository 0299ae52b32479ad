"""Rebuilding a model version's derived state beside the active version, and keeping it
current while the consumers go on serving the old one.

A version in status BUILDING gets every user's state (pooled sums, profile, top-M
memberships), the cluster statistics and all shortlists, in chunks of users in id order; each
chunk is one transaction and moves a persisted cursor, so a rebuild killed at any point
resumes after its last committed chunk. The active version is never written.

Events that arrive meanwhile reach the new version through the consumers: while a version is
BUILDING, a consumer also applies each batch to it (``BuildingVersionUpdater``), for the users
the batch touched. A user without a state under the building version is computed from their
whole interaction set; one with a state is updated incrementally. Who adds a user's
contributions to the cluster statistics is decided by an insert-if-absent of the user's
state: the rebuild skips users whose state exists, and if the rebuild and a consumer build
the same user at the same moment, exactly one insert wins and only the winner adds
contributions. So nothing is lost and nothing is counted twice; docs/training.md has the
argument in full.

>>> from streamrec.config import Settings
>>> from streamrec.model.efficientrec import EfficientRec
>>> from streamrec.model.features import FeatureSchema
>>> from streamrec.state import Interaction, ModelStatus, ModelVersion
>>> from streamrec.storage.memory import create_memory_database
>>> settings = Settings(model={"hash_buckets": 64, "item_dim": 4, "profile_dim": 4,
...                            "hidden_dim": 8, "clusters": 3}, serving={"top_memberships": 2})
>>> engine = create_memory_database()
>>> config, weights = EfficientRec.new(settings.model, FeatureSchema()).to_version()
>>> with UnitOfWork(engine) as uow:
...     _ = uow.interactions.save_many(
...         [Interaction(f"u{n}", f"i{n % 4}", 1.0, f"e{n}", "like", float(n)) for n in range(5)])
...     version = uow.models.add(ModelVersion(None, ModelStatus.BUILDING, config, weights))
...     uow.commit()
>>> report = VersionRebuilder(settings, engine, chunk_users=2).rebuild(version)
>>> report.users_done, report.users_built, report.chunks
(5, 5, 3)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine

from streamrec.config import ServingSettings, Settings
from streamrec.model.contributions import Transition, batch_contribution_deltas
from streamrec.model.decay import ForwardDecay
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.serving import ModelCache, ServingModel
from streamrec.model.user_states import UserChangeSet, UserStateUpdate, update_user_states
from streamrec.services.recommending import refresh_shortlists
from streamrec.state import Interaction, ModelStatus
from streamrec.storage.trainer import RebuildProgress
from streamrec.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

BARRIER_POLL_SECONDS = 0.1

ChunkObserver = Callable[[int, RebuildProgress], None]


class RebuildError(Exception):
    """The version cannot be rebuilt (unknown, or not in status BUILDING)."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What one call of ``rebuild`` did (a resumed rebuild counts only its own part)."""

    model_version: int
    users_done: int
    users_built: int
    chunks: int
    seconds: float
    resumed: bool
    # Time in the chunks alone, without counting users, the barrier and the shortlists.
    chunk_seconds: float = 0.0
    finished: bool = True

    @property
    def users_per_second(self) -> float:
        """Rebuild throughput: users through the chunks per second of chunk work."""
        return self.users_done / self.chunk_seconds if self.chunk_seconds > 0 else 0.0


class VersionRebuilder:
    """Builds a BUILDING version's state chunk by chunk; ``rebuild`` resumes where a killed
    one stopped. ``chunk_users`` defaults to settings.trainer.rebuild_chunk_users."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        chunk_users: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._chunk_users = chunk_users or settings.trainer.rebuild_chunk_users
        self._clock = clock
        # How long a rebuild waits for transactions that began before it (_wait_for_barrier).
        self._barrier_timeout_seconds = settings.timeouts.rebuild_barrier_seconds

    def rebuild(
        self,
        version: int,
        on_chunk: ChunkObserver | None = None,
        max_users: int | None = None,
    ) -> RebuildReport:
        """Build every user's state, the cluster statistics and the shortlists of ``version``
        (which must be BUILDING). Users that already have a state are skipped. With
        ``max_users``, stop after the chunk that reaches that many users (a benchmark, or a
        rebuild in slices): the rebuild is left unfinished and resumes from there."""
        started = time.perf_counter()
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            stored = uow.models.get(version)
            if stored is None:
                raise RebuildError(f"model version {version} is not registered")
            if stored.status is not ModelStatus.BUILDING:
                raise RebuildError(
                    f"model version {version} is {stored.status.value}, not building"
                )
            progress = uow.builds.rebuild_progress(version)
            resumed = progress is not None
            if progress is None:
                progress = uow.builds.start_rebuild(
                    version, uow.builds.count_users_with_interactions()
                )
                uow.commit()
        serving = ServingModel(version, EfficientRec.from_version(stored.config, stored.weights))
        if resumed:
            logger.info(
                "resuming the rebuild of version %d after user %r (%d of about %d done)",
                version,
                progress.cursor,
                progress.users_done,
                progress.users_total,
            )
        self._wait_for_barrier()
        cursor, done, built, chunks, chunk_seconds = progress.cursor, 0, 0, 0, 0.0
        while not progress.finished and (max_users is None or done < max_users):
            chunk_started = time.perf_counter()
            with UnitOfWork(self._engine, clock=self._clock) as uow:
                user_ids = uow.interactions.user_ids(after=cursor, limit=self._chunk_users)
                if not user_ids:
                    break
                chunk_built = build_missing_states(uow, serving, user_ids, self._settings.serving)
                uow.builds.advance_rebuild(version, user_ids[-1], len(user_ids), chunk_built)
                uow.commit()
                progress = uow.builds.rebuild_progress(version) or progress
            chunk_seconds += time.perf_counter() - chunk_started
            cursor = user_ids[-1]
            done, built, chunks = done + len(user_ids), built + chunk_built, chunks + 1
            if on_chunk is not None:
                on_chunk(chunks, progress)
        finished = max_users is None or done < max_users
        if finished:
            with UnitOfWork(self._engine, clock=self._clock) as uow:
                clusters = range(serving.model.clusters)
                refresh_shortlists(uow, version, clusters, self._settings.serving)
                uow.builds.finish_rebuild(version)
                uow.commit()
        report = RebuildReport(
            version,
            done,
            built,
            chunks,
            time.perf_counter() - started,
            resumed=resumed,
            chunk_seconds=chunk_seconds,
            finished=finished,
        )
        logger.info(
            "rebuilt version %d: %d users (%d built here) in %.1f s",
            version,
            report.users_done,
            report.users_built,
            report.seconds,
        )
        return report

    def _wait_for_barrier(self) -> None:
        """Wait until every transaction that began before now has ended (PostgreSQL).

        A consumer's batch transaction that read the version statuses before this version
        became BUILDING does not apply its batch here, and its interactions may not be
        committed yet when a chunk reads them; once such transactions are over, every batch
        is either visible to the chunks or applied here by its consumer.
        """
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            moment = uow.builds.database_time()
        if moment is None:
            return
        deadline = time.monotonic() + self._barrier_timeout_seconds
        while (older := self._older_transactions(moment)) > 0:
            if time.monotonic() >= deadline:
                logger.warning(
                    "%d transactions older than the rebuild are still open after %.0f s; "
                    "going on (a batch still in flight from before may be missed by the new "
                    "version: compare with `streamrec models show`)",
                    older,
                    self._barrier_timeout_seconds,
                )
                return
            time.sleep(BARRIER_POLL_SECONDS)

    def _older_transactions(self, moment: datetime) -> int:
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            return uow.builds.transactions_older_than(moment)


def build_missing_states(
    uow: UnitOfWork,
    serving: ServingModel,
    user_ids: Sequence[str],
    serving_settings: ServingSettings,
) -> int:
    """Build the state of each user among ``user_ids`` that has none under the serving
    version, from their whole interaction set, and add the contributions of those whose
    insert won. Returns how many were built here."""
    version = serving.version
    existing = uow.builds.existing_states(user_ids, version)
    missing = [user_id for user_id in user_ids if user_id not in existing]
    if not missing:
        return 0
    interactions = uow.interactions.for_users(missing)
    attributes = uow.users.attributes_many(missing)
    changes = [
        _from_scratch(user_id, rows, attributes.get(user_id, {}))
        for user_id, rows in sorted(interactions.items())
    ]
    updates = update_user_states(
        serving,
        changes,
        serving_settings.top_memberships,
        uow.items.get_many,
        serving_settings.pooling_half_life_seconds,
    )
    inserted = uow.builds.insert_missing_states(update.after for update in updates)
    _add_contributions(
        uow,
        version,
        [
            u.transition(serving.model.architecture.statistics_membership_precision)
            for u in updates
            if u.after.user_id in inserted
        ],
        serving.statistics_decay(serving_settings.decay_half_life_days),
    )
    return len(inserted)


def apply_to_building_version(
    uow: UnitOfWork,
    building: ServingModel,
    change_sets: Sequence[UserChangeSet],
    serving_settings: ServingSettings,
) -> list[UserStateUpdate]:
    """Apply one consumer batch to the version being rebuilt, in the batch's transaction.

    ``change_sets`` are the batch's users whose weights changed, as the consumer built them
    for the active version (their ``stored_state`` is ignored: the building version's is
    read here). Users new to the building version are built from their whole interaction
    set, unless the rebuild inserted them first; the others are updated incrementally. The
    cluster statistics get the exact deltas and the affected shortlists are refreshed.
    Returns the users' states under the building version.
    """
    if not change_sets:
        return []
    version = building.version
    stored = uow.users.get_many([change.user_id for change in change_sets], version)
    fresh = [change for change in change_sets if change.user_id not in stored]
    fresh_updates = update_user_states(
        building,
        [
            replace(change, stored_state=None, weights_before={}, timestamps_before={})
            for change in fresh
        ],
        serving_settings.top_memberships,
        uow.items.get_many,
        serving_settings.pooling_half_life_seconds,
    )
    inserted = uow.builds.insert_missing_states(update.after for update in fresh_updates)
    lost = [change.user_id for change in fresh if change.user_id not in inserted]
    if lost:
        # The rebuild committed these users first, from the interactions as they were
        # before this batch: this batch is their next incremental step.
        stored.update(uow.users.get_many(lost, version))
    known_updates = update_user_states(
        building,
        [
            replace(change, stored_state=stored[change.user_id])
            for change in change_sets
            if change.user_id in stored
        ],
        serving_settings.top_memberships,
        uow.items.get_many,
        serving_settings.pooling_half_life_seconds,
    )
    uow.users.save_many(update.after for update in known_updates)
    kept = [update for update in fresh_updates if update.after.user_id in inserted]
    affected = _add_contributions(
        uow,
        version,
        [
            update.transition(building.model.architecture.statistics_membership_precision)
            for update in (*kept, *known_updates)
        ],
        building.statistics_decay(serving_settings.decay_half_life_days),
    )
    refresh_shortlists(uow, version, affected, serving_settings)
    return [*kept, *known_updates]


class BuildingVersionUpdater:
    """The consumer's side of a rebuild: it keeps the building version's model loaded and
    applies each batch to it. Call ``apply`` inside the batch's transaction, with the
    building version read in the same statement as the active one
    (``uow.builds.serving_versions()``)."""

    def __init__(self, serving_settings: ServingSettings) -> None:
        self._serving_settings = serving_settings
        self._models = ModelCache()

    def apply(
        self, uow: UnitOfWork, building_version: int, change_sets: Sequence[UserChangeSet]
    ) -> list[UserStateUpdate]:
        serving = self._models.serving(building_version, uow.models.get)
        return apply_to_building_version(uow, serving, change_sets, self._serving_settings)

    def forget_items(self, item_ids: Iterable[str]) -> None:
        """Drop cached vectors of items whose features changed."""
        self._models.forget_items(item_ids)


def discard_derived_state(uow: UnitOfWork, version: int) -> None:
    """Delete every user state, statistic, shortlist and the rebuild progress of
    ``version`` (before rebuilding a version whose state went stale)."""
    uow.users.delete_version(version)
    uow.clusters.delete_version(version)
    uow.builds.forget_rebuild(version)


def _from_scratch(
    user_id: str, rows: Sequence[Interaction], attributes: Mapping[str, str]
) -> UserChangeSet:
    return UserChangeSet(
        user_id,
        None,
        {},
        {row.item_id: row.weight for row in rows},
        dict(attributes),
        last_event_at=max((row.timestamp for row in rows), default=None),
        timestamps_after={row.item_id: row.timestamp for row in rows},
    )


def _add_contributions(
    uow: UnitOfWork, version: int, transitions: Sequence[Transition], decay: ForwardDecay | None
) -> set[int]:
    """Add the deltas of ``transitions``; returns the clusters whose statistics changed."""
    item_deltas, mass_deltas = batch_contribution_deltas(transitions, decay)
    if item_deltas or mass_deltas:
        uow.clusters.add_deltas(version, item_deltas, mass_deltas)
    return {delta.cluster for delta in item_deltas} | {delta.cluster for delta in mass_deltas}
