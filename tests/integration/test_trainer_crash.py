"""A trainer killed with -9 in the middle of a rebuild leaves the active version serving and
untouched; the next run resumes the rebuild where it stopped, and the new version's state is
exactly what a rebuild from scratch gives."""

from __future__ import annotations

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.state import ModelStatus
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.snapshots import differences
from tests.integration.pipeline_support import on_postgresql
from tests.integration.trainer_support import (
    activate_with_state,
    reference_snapshot,
    snapshot,
    start_stopping_trainer,
    start_trainer,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
)

CHUNK_USERS = 50


@on_postgresql
def test_a_trainer_killed_mid_rebuild_leaves_the_active_version_and_the_next_run_resumes(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(
        Settings(), database_url, promotion_tolerance=1.0, rebuild_chunk_users=CHUNK_USERS
    )
    interactions = stream_interactions()
    users = len({row.user_id for row in interactions})
    store(engine, interactions)
    active = activate_with_state(engine, settings, trained_model(settings, interactions))
    before = snapshot(engine, active)

    killed = start_stopping_trainer(settings, "rebuilding:2")
    killed.wait_for_line("stopped at rebuilding:2")
    killed.kill()  # SIGKILL: no cleanup of any kind

    with UnitOfWork(engine) as uow:
        assert uow.models.active_version() == active
        building = uow.builds.building_version()
        assert building is not None
        progress = uow.builds.rebuild_progress(building)
        killed_run = uow.training_runs.latest()
    assert progress is not None and progress.users_done == 2 * CHUNK_USERS
    assert not progress.finished
    assert killed_run is not None and killed_run.outcome is None
    assert differences(before, snapshot(engine, active)) == []

    status, output = start_trainer(settings, "--once").wait()

    assert status == 0, output
    assert f"resumed the interrupted rebuild of version {building}" in output
    with UnitOfWork(engine) as uow:
        assert uow.models.active_version() == building
        old = uow.models.get(active)
        closed = uow.training_runs.get(killed_run.id)
        progress = uow.builds.rebuild_progress(building)
    assert old is not None and old.status is ModelStatus.RETIRED
    assert closed is not None and closed.outcome == "interrupted"
    assert closed.candidate_version == building
    # The resumed rebuild went on after the cursor instead of starting over.
    assert progress is not None and progress.finished and progress.users_done == users
    rebuilt = snapshot(engine, building)
    assert len(rebuilt.user_states) == users
    assert differences(reference_snapshot(engine, settings, building), rebuilt) == []
    assert differences(before, snapshot(engine, active)) == []
