"""Chaos: consumers and trainers killed with SIGKILL from the test, again and again, at
moments a seeded RNG picks, while a replay is being produced. Nothing is lost, nothing is
applied twice, and the end is what a clean run (or a rebuild from scratch) gives."""

from __future__ import annotations

import random
import time

from sqlalchemy import Engine, select

from streamrec.benchmarks.replay_thread import ReplayThread
from streamrec.config import Settings
from streamrec.datasets.synthetic import SyntheticStream
from streamrec.state import ModelStatus
from streamrec.storage import UnitOfWork
from streamrec.storage.tables import TrainingRunRow, table_of
from tests.fixtures.snapshots import differences, take_snapshot
from tests.integration.chaos_support import (
    assert_same_as_clean_run,
    chaos_settings,
    clean_run,
    kill_hard,
    kill_streamrec_children_left_behind,  # noqa: F401 (an autouse fixture)
    ranking_differences,
    recommendation_lists,
    stored_records,
    wait_for_stored_records,
)
from tests.integration.pipeline_support import (
    SMALL_BATCH,
    catalogue,
    interaction_stream,
    on_postgresql,
    produce,
    register_model,
    start_consumer,
)
from tests.integration.trainer_support import (
    PLANTED_GROUPS,
    rebuilt_copy,
    snapshot,
    start_trainer,
    trainer_settings,
    wait_until,
)

SEED = 7_2024
REPLAY_EVENTS = 1_200
# Slow enough that the replay is still being produced through most of the kills.
REPLAY_EVENTS_PER_SECOND = 60.0
CONSUMER_KILLS = 5
HELD_BACK_EVENTS = 50
# Once the kill is due, a pause so that it lands anywhere in a batch: polling, applying,
# committing, publishing or acknowledging.
PAUSE_BEFORE_KILL_SECONDS = (0.0, 0.3)
BROKEN_RECORD = b'{"broken": '

TRAINER_REBUILD_CHUNK_USERS = 20
TRAINER_REPLAY_EVENTS_PER_SECOND = 100.0


@on_postgresql
def test_a_consumer_killed_again_and_again_during_a_replay_ends_as_a_clean_run(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = chaos_settings(kafka_settings, database_url)
    model = register_model(engine, settings)
    events = interaction_stream(REPLAY_EVENTS, seed=41, users=50)
    # Read again after every kill below the acknowledged offsets; stored once all the same.
    produce(settings, [BROKEN_RECORD])
    items = {item.item_id: item for item in catalogue()}
    # The tail is held back until the kills are over, so that none of them comes too late.
    replayed, tail = events[:-HELD_BACK_EVENTS], events[-HELD_BACK_EVENTS:]
    replay = ReplayThread(settings, items, replayed, rate=REPLAY_EVENTS_PER_SECOND).start()
    rng = random.Random(SEED)
    kill_after_stored = sorted(rng.sample(range(SMALL_BATCH, len(replayed)), CONSUMER_KILLS))

    for target in kill_after_stored:
        consumer = start_consumer(settings)
        # Each consumer gets at least one batch in before its kill.
        due = max(target, stored_records(engine, settings) + 1)
        wait_for_stored_records(engine, settings, due, alive=[consumer.process])
        time.sleep(rng.uniform(*PAUSE_BEFORE_KILL_SECONDS))
        kill_hard(consumer.process)

    replay.join(timeout=60)
    assert replay.done()
    produce(settings, tail)
    status, output = start_consumer(settings, "--idle-exit", "2").wait(timeout=120)
    assert status == 0, output
    dead_letters = assert_same_as_clean_run(settings, model, engine, records=len(events) + 1)
    assert dead_letters == {"invalid_json": 1}


@on_postgresql
def test_a_trainer_killed_during_a_replay_leaves_the_state_a_rebuild_from_scratch_gives(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(
        chaos_settings(kafka_settings, database_url),
        database_url,
        promotion_tolerance=1.0,  # every candidate is promoted: the rebuild always runs
        rebuild_chunk_users=TRAINER_REBUILD_CHUNK_USERS,
    )
    first_model = register_model(engine, settings)
    with UnitOfWork(engine) as uow:
        first_version = uow.models.active_version()
    events = list(SyntheticStream(PLANTED_GROUPS).events())
    # Half the stream is in before the trainer starts (it needs users to sample), a quarter
    # is replayed while it is killed, and the last quarter arrives while the version it was
    # rebuilding is left half built.
    half, three_quarters = len(events) // 2, len(events) * 3 // 4
    ReplayThread(settings, {}, events[:half]).start().join(timeout=60)
    consumer = start_consumer(settings)  # stopped by SIGTERM once everything is in
    wait_for_stored_records(engine, settings, half, alive=[consumer.process])
    replay = ReplayThread(
        settings, {}, events[half:three_quarters], rate=TRAINER_REPLAY_EVENTS_PER_SECOND
    ).start()
    rng = random.Random(SEED)

    # Killed as soon as its run is recorded: while it samples and trains a candidate ...
    trainer = start_trainer(settings, "--once", "--force")
    wait_until(lambda: _unfinished_run(engine), "a training run to start")
    kill_hard(trainer.process)
    with UnitOfWork(engine) as uow:
        assert uow.builds.building_version() is None, "killed after its candidate was built"
    # ... and the next one while rebuilding its candidate, after a random number of chunks.
    trainer = start_trainer(settings, "--once", "--force")
    chunks = rng.randint(1, 5)
    wait_until(
        lambda: _rebuilt_users(engine) >= chunks * TRAINER_REBUILD_CHUNK_USERS,
        f"{chunks} rebuild chunks",
    )
    kill_hard(trainer.process)
    replay.join(timeout=60)
    ReplayThread(settings, {}, events[three_quarters:]).start().join(timeout=60)
    wait_for_stored_records(engine, settings, len(events), alive=[consumer.process])
    with UnitOfWork(engine) as uow:
        assert uow.builds.building_version() is not None

    status, output = start_trainer(settings, "--once").wait(timeout=120)
    assert status == 0, output
    assert "resumed the interrupted rebuild" in output, output
    consumer.process.terminate()
    status, output = consumer.wait(timeout=120)
    assert status == 0, output

    assert stored_records(engine, settings) == len(events)
    with UnitOfWork(engine) as uow:
        active = uow.models.active_version()
        assert uow.builds.building_version() is None
        first = uow.models.get(first_version)
    assert active is not None and active != first_version
    assert first is not None and first.status is ModelStatus.RETIRED
    # The two killed runs were closed as interrupted by the next one.
    assert _run_outcomes(engine) == ["interrupted", "interrupted", "promoted"]

    # The stream's interactions are a clean run's; the serving state is the new version
    # rebuilt from scratch over them, though it was rebuilt twice while events arrived.
    clean = clean_run(settings, first_model)
    try:
        with UnitOfWork(clean) as uow:
            expected = take_snapshot(uow)
    finally:
        clean.dispose()
    actual = snapshot(engine, active)
    assert actual.interactions == expected.interactions
    assert actual.attributes == expected.attributes
    reference, copy = rebuilt_copy(engine, settings, active)
    try:
        assert differences(snapshot(reference, copy), actual) == []
        with UnitOfWork(reference) as uow:
            uow.models.activate(copy)
            uow.commit()
        users = {user_id for user_id, _ in actual.interactions}
        assert (
            ranking_differences(
                recommendation_lists(reference, settings, users),
                recommendation_lists(engine, settings, users),
            )
            == []
        )
    finally:
        reference.dispose()


def _unfinished_run(engine: Engine) -> bool:
    with UnitOfWork(engine) as uow:
        latest = uow.training_runs.latest()
    return latest is not None and latest.outcome is None


def _rebuilt_users(engine: Engine) -> int:
    with UnitOfWork(engine) as uow:
        building = uow.builds.building_version()
        progress = None if building is None else uow.builds.rebuild_progress(building)
    return 0 if progress is None else progress.users_done


def _run_outcomes(engine: Engine) -> list[str | None]:
    runs = table_of(TrainingRunRow)
    with engine.connect() as connection:
        return list(connection.execute(select(runs.c.outcome).order_by(runs.c.id)).scalars())
