"""A trainer run end to end on SQLite and PostgreSQL: a promoted candidate serves with the
state a from-scratch rebuild gives, the promotion guard rejects a worse candidate, and runs
without enough data are skipped, each run recorded with its reason."""

from __future__ import annotations

from typing import Any

import torch
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.model.efficientrec import EfficientRec
from streamrec.services.training_data import TrainingSample
from streamrec.services.training_run import (
    RunOutcome,
    RunRequest,
    TrainingRunService,
    precision_key,
)
from streamrec.state import ModelStatus
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.snapshots import differences
from tests.integration.trainer_support import (
    activate_with_state,
    reference_snapshot,
    snapshot,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
)

# Forced: the first model was registered after the interactions, so none of them is new.
REQUEST = RunRequest(TrainingTrigger.OPERATOR, "a test asked", force=True)


def _service(settings: Settings, engine: Engine, **options: Any) -> TrainingRunService:
    return TrainingRunService(settings, engine, training_users=200, evaluation_users=60, **options)


def _zeroed(
    active: EfficientRec, sample: TrainingSample, settings: Settings, seed: int
) -> tuple[EfficientRec, dict[str, Any]]:
    """A deliberately worse candidate: every weight zero, so every user lands in the same
    clusters and is recommended what is popular overall."""
    candidate = active.copy()
    with torch.no_grad():
        for parameter in candidate.encoder.parameters():
            parameter.zero_()
    return candidate, {"deliberately": "worse"}


def _unchanged(
    active: EfficientRec, sample: TrainingSample, settings: Settings, seed: int
) -> tuple[EfficientRec, dict[str, Any]]:
    return active.copy(), {}


def test_a_promoted_candidate_serves_with_the_state_a_rebuild_from_scratch_gives(
    database_url: str, engine: Engine
) -> None:
    # Any candidate passes the guard here: this test is about the switch.
    settings = trainer_settings(Settings(), database_url, promotion_tolerance=1.0)
    interactions = stream_interactions()
    store(engine, interactions)
    active = activate_with_state(engine, settings, trained_model(settings, interactions))
    before = snapshot(engine, active)

    result = _service(settings, engine).run(REQUEST)

    assert result.outcome is RunOutcome.PROMOTED, result.reason
    candidate = result.candidate_version
    assert candidate is not None
    with UnitOfWork(engine) as uow:
        assert uow.models.active_version() == candidate
        old, new = uow.models.get(active), uow.models.get(candidate)
        run = uow.training_runs.get(result.run_id)
    assert old is not None and old.status is ModelStatus.RETIRED
    assert new is not None and new.parent_version == active
    assert new.data_window["training_users"] > 0
    assert run is not None and run.outcome == "promoted" and run.finished_at is not None
    assert run.candidate_version == candidate and run.parent_version == active
    assert run.metrics["trigger_detail"] == "a test asked"
    key = precision_key(settings)
    assert {key, "held_out_users"} <= run.metrics["candidate"].keys() & run.metrics["active"].keys()

    after = snapshot(engine, candidate)
    assert len(after.user_states) == len({row.user_id for row in interactions})
    assert differences(reference_snapshot(engine, settings, candidate), after) == []
    # The version that served meanwhile was never written.
    assert differences(before, snapshot(engine, active)) == []


def test_the_promotion_guard_rejects_a_deliberately_worse_candidate(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url)
    interactions = stream_interactions()
    store(engine, interactions)
    active = activate_with_state(engine, settings, trained_model(settings, interactions))

    result = _service(settings, engine, candidate_trainer=_zeroed).run(REQUEST)

    assert result.outcome is RunOutcome.REJECTED, result.reason
    key = precision_key(settings)
    candidate_score = result.metrics["candidate"][key]
    active_score = result.metrics["active"][key]
    assert candidate_score < active_score - settings.trainer.promotion_tolerance
    assert result.reason.startswith("worse than active")
    assert result.candidate_version is not None
    with UnitOfWork(engine) as uow:
        assert uow.models.active_version() == active
        rejected = uow.models.get(result.candidate_version)
        assert uow.users.count(result.candidate_version) == 0
        run = uow.training_runs.get(result.run_id)
    assert rejected is not None and rejected.status is ModelStatus.REJECTED
    assert rejected.reason == result.reason
    assert run is not None and (run.outcome, run.reason) == ("rejected", result.reason)


def test_a_candidate_exactly_as_good_as_the_active_version_is_promoted(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url, promotion_tolerance=0.0)
    interactions = stream_interactions()
    store(engine, interactions)
    activate_with_state(engine, settings, trained_model(settings, interactions))

    result = _service(settings, engine, candidate_trainer=_unchanged).run(REQUEST)

    key = precision_key(settings)
    assert result.metrics["candidate"][key] == result.metrics["active"][key]
    assert result.outcome is RunOutcome.PROMOTED, result.reason


def test_runs_without_an_active_version_or_enough_new_data_are_skipped_with_the_reason(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url, min_new_events=1_000_000)
    interactions = stream_interactions()
    store(engine, interactions)
    service = _service(settings, engine)

    unforced = RunRequest(TrainingTrigger.SCHEDULE, "the clock")

    without_model = service.run(unforced)
    # Registered first: every stored interaction is new to it.
    activate_with_state(engine, settings, trained_model(settings, interactions), created_at=0.0)
    too_little = service.run(unforced)
    forced = service.run(REQUEST)

    assert without_model.outcome is RunOutcome.SKIPPED
    assert "no active model version" in without_model.reason
    assert too_little.outcome is RunOutcome.SKIPPED
    assert f"only {len(interactions)} new interactions" in too_little.reason
    assert "minimum 1000000" in too_little.reason
    assert forced.outcome is not RunOutcome.SKIPPED, forced.reason
    with UnitOfWork(engine) as uow:
        recorded = [uow.training_runs.get(result.run_id) for result in (without_model, too_little)]
    assert [(run.outcome, run.reason) for run in recorded if run] == [
        ("skipped", without_model.reason),
        ("skipped", too_little.reason),
    ]
