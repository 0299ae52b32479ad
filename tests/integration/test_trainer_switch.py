"""Events that arrive while a version is being rebuilt end up in it exactly once: applied by
the consumers' hook between the rebuild's chunks, and when the rebuild and a consumer build
the same user at the same moment (real concurrent transactions on PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, text

from consumers import ConsumerHooks, InteractionConsumer
from streamrec.config import Settings
from streamrec.kafka import create_consumer, create_producer
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.serving import ServingModel
from streamrec.model.user_states import UserChangeSet
from streamrec.services.batch import BatchResult
from streamrec.services.ingest import IngestService
from streamrec.services.rebuild import (
    BuildingVersionUpdater,
    VersionRebuilder,
    build_missing_states,
)
from streamrec.state import Interaction, ModelStatus
from streamrec.storage.trainer import RebuildProgress, ServingVersions
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.snapshots import differences
from tests.integration.pipeline_support import (
    catalogue,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    produce,
)
from tests.integration.pipeline_support import reference_snapshot as pipeline_reference_snapshot
from tests.integration.trainer_support import (
    reference_snapshot,
    register,
    snapshot,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
    wait_until,
)

NEW_TIME = 1_900_000_000.0


def consumer_batch(
    uow: UnitOfWork, updater: BuildingVersionUpdater, rows: Sequence[Interaction]
) -> None:
    """What a consumer's batch transaction does for the building version: store the
    interactions, then apply the users' changes to the version being rebuilt."""
    users = sorted({row.user_id for row in rows})
    stored = uow.interactions.for_users(users)
    before = {user: {row.item_id: row.weight for row in stored.get(user, [])} for user in users}
    after = {user: dict(weights) for user, weights in before.items()}
    for row in rows:
        after[row.user_id][row.item_id] = row.weight
    uow.interactions.save_many(rows)
    versions = uow.builds.serving_versions()
    assert versions.building is not None
    updater.apply(
        uow,
        versions.building,
        [UserChangeSet(user, None, before[user], after[user], {}, NEW_TIME) for user in users],
    )


def _events(pairs: Sequence[tuple[str, str, float]]) -> list[Interaction]:
    return [
        Interaction(user, item, weight, f"late-{number}", "rating", NEW_TIME + number)
        for number, (user, item, weight) in enumerate(pairs)
    ]


def test_batches_applied_during_a_rebuild_are_in_the_new_version_exactly_once(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url, rebuild_chunk_users=50)
    interactions = stream_interactions()
    store(engine, interactions)
    model = trained_model(settings, interactions)
    register(engine, model, ModelStatus.ACTIVE)
    building = register(engine, trained_model(settings, interactions, seed=1), ModelStatus.BUILDING)
    updater = BuildingVersionUpdater(settings.serving)
    # User ids sort as strings: u0, u1, u10, u100, ... so chunk 2 ends well before u9.
    late = _events(
        [
            ("u0", "i299", 1.0),  # rebuilt already: an incremental step
            ("u1", interactions[0].item_id, -1.0),  # rebuilt already, maybe a changed weight
            ("u99", "i298", 0.5),  # not rebuilt yet: built by the consumer, skipped later
            ("a-new-user", "i5", 1.0),  # before the cursor: only the consumer builds it
            ("z-new-user", "i6", 1.0),  # after the cursor: built by the consumer, skipped later
            ("z-new-user", "i7", -0.5),
        ]
    )

    def on_chunk(chunk: int, progress: RebuildProgress) -> None:
        if chunk == 2:
            with UnitOfWork(engine) as uow:
                consumer_batch(uow, updater, late)
                uow.commit()

    report = VersionRebuilder(settings, engine).rebuild(building, on_chunk)

    users = {row.user_id for row in interactions} | {row.user_id for row in late}
    after = snapshot(engine, building)
    assert len(after.user_states) == len(users)
    # The rebuild never visits a-new-user (behind its cursor), and it finds u99 and
    # z-new-user built already by the consumer.
    assert report.users_done == len(users) - 1
    assert report.users_built == report.users_done - 2
    assert differences(reference_snapshot(engine, settings, building), after) == []


@on_postgresql
@pytest.mark.parametrize("first", ["rebuild", "consumer"])
def test_when_the_rebuild_and_a_consumer_build_a_user_at_once_one_insert_counts(
    database_url: str, engine: Engine, first: str
) -> None:
    settings = trainer_settings(Settings(), database_url)
    interactions = stream_interactions()
    store(engine, interactions)
    register(engine, trained_model(settings, interactions), ModelStatus.ACTIVE)
    building = register(engine, trained_model(settings, interactions, seed=1), ModelStatus.BUILDING)
    with UnitOfWork(engine) as uow:
        stored = uow.models.get(building)
    assert stored is not None
    serving = ServingModel(building, EfficientRec.from_version(stored.config, stored.weights))
    updater = BuildingVersionUpdater(settings.serving)
    user = "u7"
    late = _events([(user, "i299", 1.0), (user, "i298", -1.0)])

    def rebuild_side(uow: UnitOfWork) -> None:
        build_missing_states(uow, serving, [user], settings.serving)

    def consumer_side(uow: UnitOfWork) -> None:
        consumer_batch(uow, updater, late)

    steps = {"rebuild": rebuild_side, "consumer": consumer_side}
    second = "consumer" if first == "rebuild" else "rebuild"
    with UnitOfWork(engine) as holder:
        steps[first](holder)
        # Uncommitted: the other side's insert of the same user must wait for this one.
        finished = threading.Event()
        errors: list[BaseException] = []

        def run_second() -> None:
            try:
                with UnitOfWork(engine) as uow:
                    steps[second](uow)
                    uow.commit()
            except BaseException as error:
                errors.append(error)
            finally:
                finished.set()

        thread = threading.Thread(target=run_second)
        thread.start()
        _wait_until_blocked_on_a_lock(engine)
        assert not finished.is_set()
        holder.commit()
    thread.join(timeout=30)
    assert not errors, errors
    # The rest of the rebuild finds the user built and leaves it alone.
    report = VersionRebuilder(settings, engine).rebuild(building)

    assert report.users_built == report.users_done - 1
    expected = reference_snapshot(engine, settings, building)
    assert differences(expected, snapshot(engine, building)) == []


def test_the_active_and_building_versions_are_read_in_one_statement(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url)
    model = EfficientRec.new(settings.model, FeatureSchema(), seed=0)
    active = register(engine, model, ModelStatus.ACTIVE)
    building = register(engine, model, ModelStatus.BUILDING)
    with UnitOfWork(engine) as uow:
        assert uow.builds.serving_versions() == ServingVersions(active, building)
        uow.models.activate(building)
        assert uow.builds.serving_versions() == ServingVersions(building, None)


def _wait_until_blocked_on_a_lock(engine: Engine) -> None:
    """Until the second transaction waits for the first one's insert of the user (its row
    in users or its state)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO user%'"
                )
            )
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the second transaction never waited for the first one's insert")


# Mid-replay switch --------------------------------------------------------------------------

REPLAY_EVENTS = 900
REPLAY_USERS = 120


@on_postgresql
def test_consumers_switch_versions_mid_replay_and_match_a_rebuild_from_scratch(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    """A consumer keeps consuming while a new version is rebuilt and flipped: every event is
    applied once (under the old version, the new one, or both while it is building), and
    after the flip the new version's state equals a from-scratch rebuild."""
    settings = trainer_settings(
        pipeline_settings(kafka_settings, database_url), database_url, rebuild_chunk_users=20
    )
    events = interaction_stream(REPLAY_EVENTS, seed=5, users=REPLAY_USERS)
    first, during, after = events[:300], events[300:600], events[600:]
    old = register(engine, _untrained(settings, seed=0), ModelStatus.ACTIVE)
    # A candidate until its rebuild starts: consumers only update a BUILDING version.
    new = register(engine, _untrained(settings, seed=1), ModelStatus.CANDIDATE)
    produce(settings, first, items=catalogue())

    results: list[BatchResult] = []
    consumer = InteractionConsumer(
        settings,
        IngestService(settings, engine),
        create_consumer(settings, group_id=settings.kafka.consumer_group),
        create_producer(settings),
        hooks=ConsumerHooks(on_batch=lambda result, timing, records: results.append(result)),
    )
    loop = threading.Thread(target=consumer.run)
    loop.start()
    try:
        wait_until(lambda: _applied(engine, settings) == len(first), "the first part")
        # Item features change item vectors, and users pooled before an item's features
        # arrived keep the old vectors: the reference can only match once the items are in.
        wait_until(
            lambda: _applied(engine, settings, settings.topics.items) == len(catalogue()),
            "the catalogue",
        )
        with UnitOfWork(engine) as uow:
            uow.models.set_status(new, ModelStatus.BUILDING)
            uow.commit()
        slices = iter([during[:100], during[100:200], during[200:]])

        def replay_between_chunks(chunk: int, progress: RebuildProgress) -> None:
            # Events arrive while the rebuild runs: the consumer applies them to both versions
            # before the next chunk reads.
            part = next(slices, None)
            if part is not None:
                target = _applied(engine, settings) + len(part)
                produce(settings, part)
                wait_until(lambda: _applied(engine, settings) == target, "a mid-rebuild part")

        report = VersionRebuilder(settings, engine).rebuild(new, replay_between_chunks)
        assert next(slices, None) is None, "the rebuild ended before all parts were replayed"
        with UnitOfWork(engine) as uow:
            uow.models.activate(new)
            uow.commit()
        produce(settings, after)
        wait_until(lambda: _applied(engine, settings) == len(events), "the whole replay")
    finally:
        consumer.request_stop()
        loop.join(timeout=30)
    assert not loop.is_alive()

    applied = [result.model_version for result in results if result.counters.records]
    # The consumer served the old version, then the new one after the flip, without restart.
    assert applied[0] == old and applied[-1] == new
    assert sorted(set(applied), key=applied.index) == [old, new]
    # No record applied twice, none skipped: every record was processed exactly once.
    assert sum(result.counters.records_already_applied for result in results) == 0
    assert sum(result.counters.records for result in results) == len(events) + len(catalogue())
    # The consumers built some users under the new version, the rebuild the others.
    assert 0 < report.users_built < report.users_done
    # Same interactions as one uninterrupted run, and the new version's users and cluster
    # statistics equal a rebuild from scratch over them.
    whole_run = pipeline_reference_snapshot(settings, _untrained(settings, seed=1))
    assert snapshot(engine, new).interactions == whole_run.interactions
    assert differences(reference_snapshot(engine, settings, new), snapshot(engine, new)) == []


def _untrained(settings: Settings, seed: int) -> EfficientRec:
    # Exactly-once bookkeeping does not depend on the quality of the model, and training
    # would cost the test most of its time.
    return EfficientRec.new(settings.model, FeatureSchema(), seed=seed)


def _applied(engine: Engine, settings: Settings, topic: str | None = None) -> int:
    """Records of ``topic`` (default: interactions) the consumer group has stored offsets for."""
    with UnitOfWork(engine) as uow:
        stored = uow.offsets.get(
            settings.kafka.consumer_group, topic or settings.topics.interactions
        )
    return sum(stored.values())
