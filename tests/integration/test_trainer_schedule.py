"""The trainer process runs on its schedule: with a one-second interval, scheduled runs fire,
are recorded with their trigger, and show in the metrics; a version left building is
resumed as soon as the process starts."""

from __future__ import annotations

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.state import ModelStatus
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from tests.integration.trainer_support import (
    register,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
    wait_until,
)
from trainer.process import TrainerProcess


def test_scheduled_runs_fire_on_a_short_interval(database_url: str, engine: Engine) -> None:
    settings = trainer_settings(
        Settings(), database_url, schedule="interval:1", min_new_events=1_000_000
    )
    interactions = stream_interactions()
    store(engine, interactions)
    register(engine, trained_model(settings, interactions), ModelStatus.ACTIVE)
    process = TrainerProcess(settings, engine, use_control_topic=False)

    process.start()
    try:
        runs = wait_until(lambda: _finished_runs(engine, at_least=2), "two scheduled runs")
    finally:
        process.stop()

    assert {run.trigger for run in runs} == {TrainingTrigger.SCHEDULE}
    assert {run.outcome for run in runs} == {"skipped"}
    assert all("minimum 1000000" in (run.reason or "") for run in runs)
    assert all(run.metrics["trigger_detail"] == "schedule interval:1" for run in runs)
    skipped = process.metrics.trainer.sample("streamrec_trainer_runs_total", outcome="skipped")
    assert skipped is not None and skipped >= 2


def test_a_version_left_building_is_resumed_when_the_process_starts(
    database_url: str, engine: Engine
) -> None:
    # The schedule itself would only fire in an hour.
    settings = trainer_settings(Settings(), database_url, schedule="interval:3600")
    interactions = stream_interactions()
    store(engine, interactions)
    model = trained_model(settings, interactions)
    active = register(engine, model, ModelStatus.ACTIVE)
    building = register(engine, model, ModelStatus.BUILDING)
    process = TrainerProcess(settings, engine, use_control_topic=False)

    process.start()
    try:
        wait_until(lambda: _active_version(engine) == building, "the resumed version")
    finally:
        process.stop()

    with UnitOfWork(engine) as uow:
        assert uow.users.count(building) == len({row.user_id for row in interactions})
        assert uow.models.get(active).status is ModelStatus.RETIRED  # type: ignore[union-attr]
    assert process.metrics.trainer.sample("streamrec_active_model_version") == building


def _finished_runs(engine: Engine, at_least: int) -> list:
    with UnitOfWork(engine) as uow:
        latest = uow.training_runs.latest()
        if latest is None:
            return []
        runs = [uow.training_runs.get(run_id) for run_id in range(latest.id, 0, -1)]
    finished = [run for run in runs if run is not None and run.outcome is not None]
    return finished if len(finished) >= at_least else []


def _active_version(engine: Engine) -> int | None:
    with UnitOfWork(engine) as uow:
        return uow.models.active_version()
