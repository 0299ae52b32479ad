"""Runs never overlap: the database run lock admits one holder at a time on SQLite and
PostgreSQL, a SQLite lease of a dead holder expires, and a second trainer process cannot
start a run while another one is in the middle of one."""

from __future__ import annotations

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.services.run_lock import LeaseRunLock, create_run_lock
from streamrec.services.training_run import RunOutcome, RunRequest, TrainingRunService
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from tests.integration.pipeline_support import on_postgresql
from tests.integration.trainer_support import (
    activate_with_state,
    start_stopping_trainer,
    start_trainer,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
)


def test_the_run_lock_admits_one_holder_at_a_time(engine: Engine) -> None:
    first = create_run_lock(engine, owner="trainer-a")
    second = create_run_lock(engine, owner="trainer-b")

    assert first.acquire()
    assert not second.acquire()
    assert second.holder() == "trainer-a"
    assert first.still_held() and not second.still_held()
    first.release()
    assert second.holder() is None
    assert second.acquire()
    assert not first.acquire()
    second.release()


def test_a_lease_left_by_a_dead_holder_expires(engine: Engine) -> None:
    now = [1_000.0]
    dead = LeaseRunLock(engine, "trainer", "dead", lease_seconds=60, clock=lambda: now[0])
    alive = LeaseRunLock(engine, "trainer", "alive", lease_seconds=60, clock=lambda: now[0])
    assert dead.acquire()
    # The holder dies: it stops renewing and never releases; only time frees the lock.
    dead.abandon()
    now[0] += 59
    assert not alive.acquire()
    now[0] += 2
    assert alive.acquire()
    assert alive.holder() == "alive"
    alive.release()


@on_postgresql
def test_a_second_trainer_cannot_start_a_run_while_one_is_running(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url)
    interactions = stream_interactions()
    store(engine, interactions)
    activate_with_state(engine, settings, trained_model(settings, interactions))
    request = RunRequest(TrainingTrigger.OPERATOR, "second trainer", force=True)

    first = start_stopping_trainer(settings, "trained")
    first.wait_for_line("stopped at trained")
    try:
        in_process = TrainingRunService(settings, engine).run(request)
        status, output = start_trainer(settings, "--once", "--force").wait()
    finally:
        first.kill()

    assert in_process.outcome is RunOutcome.SKIPPED
    assert in_process.reason.startswith("another run is in progress (lock held by ")
    assert status == 0 and "skipped: another run is in progress" in output, output
    with UnitOfWork(engine) as uow:
        paused = uow.training_runs.get(in_process.run_id - 1)
        versions = uow.models.list()
    # The paused run is still open, and nobody registered a candidate beside it.
    assert paused is not None and paused.outcome is None
    assert len(versions) == 1

    # Its process is gone, and with it the lock: the next run goes ahead.
    after = TrainingRunService(settings, engine, training_users=200, evaluation_users=60).run(
        request
    )
    assert after.outcome in (RunOutcome.PROMOTED, RunOutcome.REJECTED), after.reason
    with UnitOfWork(engine) as uow:
        closed = uow.training_runs.get(paused.id)
    assert closed is not None and closed.outcome == "interrupted"
