"""Events that arrive while a version is being rebuilt end up in it exactly once: applied by
the consumers' hook between the rebuild's chunks, and when the rebuild and a consumer build
the same user at the same moment (real concurrent transactions on PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, text

from streamrec.config import Settings
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.services.model_cache import ServingModel
from streamrec.services.rebuild import (
    BuildingVersionUpdater,
    VersionRebuilder,
    build_missing_states,
)
from streamrec.services.snapshot import differences
from streamrec.services.user_states import UserChangeSet
from streamrec.state import Interaction, ModelStatus
from streamrec.storage.trainer import RebuildProgress, ServingVersions, TrainerUnitOfWork
from tests.integration.pipeline_support import on_postgresql
from tests.integration.trainer_support import (
    reference_snapshot,
    register,
    snapshot,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
)

NEW_TIME = 1_900_000_000.0


def consumer_batch(
    uow: TrainerUnitOfWork, updater: BuildingVersionUpdater, rows: Sequence[Interaction]
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
    updater = BuildingVersionUpdater(settings.model)
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
            with TrainerUnitOfWork(engine) as uow:
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
    with TrainerUnitOfWork(engine) as uow:
        stored = uow.models.get(building)
    assert stored is not None
    serving = ServingModel(building, EfficientRec.from_version(stored.config, stored.weights))
    updater = BuildingVersionUpdater(settings.model)
    user = "u7"
    late = _events([(user, "i299", 1.0), (user, "i298", -1.0)])

    def rebuild_side(uow: TrainerUnitOfWork) -> None:
        build_missing_states(uow, serving, [user], settings.model)

    def consumer_side(uow: TrainerUnitOfWork) -> None:
        consumer_batch(uow, updater, late)

    steps = {"rebuild": rebuild_side, "consumer": consumer_side}
    second = "consumer" if first == "rebuild" else "rebuild"
    with TrainerUnitOfWork(engine) as holder:
        steps[first](holder)
        # Uncommitted: the other side's insert of the same user must wait for this one.
        finished = threading.Event()
        errors: list[BaseException] = []

        def run_second() -> None:
            try:
                with TrainerUnitOfWork(engine) as uow:
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
    with TrainerUnitOfWork(engine) as uow:
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
