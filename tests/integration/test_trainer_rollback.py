"""Rolling back restores the previous version's recommendations: at once when its state is
still current, after a rebuild when interactions arrived since it was retired; and
``streamrec models`` drives it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import Engine

from streamrec.cli.main import main
from streamrec.config import Settings
from streamrec.model.efficientrec import EfficientRec
from streamrec.services.recommending import current_recommendations
from streamrec.services.training_data import TrainingSample
from streamrec.services.training_run import RunOutcome, RunRequest, TrainingRunService
from streamrec.state import Interaction, ModelStatus
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.snapshots import differences
from tests.integration.pipeline_support import settings_environment
from tests.integration.trainer_support import (
    activate_with_state,
    reference_snapshot,
    snapshot,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
)

SHOWN_USERS = [f"u{number}" for number in range(0, 400, 7)]

Recommendations = dict[str, list[tuple[str, float]]]


def _recommendations(engine: Engine, settings: Settings) -> Recommendations:
    with UnitOfWork(engine) as uow:
        messages = {
            user: current_recommendations(uow, user, settings.serving, time.time())
            for user in SHOWN_USERS
        }
    return {
        user: [(item.item_id, round(item.score, 6)) for item in message.items]
        for user, message in messages.items()
        if message is not None
    }


def _promote_a_different_model(engine: Engine, settings: Settings) -> int:
    interactions = stream_interactions()

    def from_another_seed(
        active: EfficientRec, sample: TrainingSample, settings: Settings, seed: int
    ) -> tuple[EfficientRec, dict[str, Any]]:
        return trained_model(settings, interactions, seed=7), {}

    result = TrainingRunService(
        settings,
        engine,
        candidate_trainer=from_another_seed,
        training_users=200,
        evaluation_users=60,
    ).run(RunRequest(TrainingTrigger.OPERATOR, "switch", force=True))
    assert result.outcome is RunOutcome.PROMOTED, result.reason
    assert result.candidate_version is not None
    return result.candidate_version


def test_a_rollback_restores_the_previous_recommendations_at_once(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url, promotion_tolerance=1.0)
    interactions = stream_interactions()
    # Written well before the switch: beyond the margin allowed for clock skew.
    store(engine, interactions, written_at=time.time() - 3_600)
    first = activate_with_state(engine, settings, trained_model(settings, interactions))
    before = _recommendations(engine, settings)
    second = _promote_a_different_model(engine, settings)
    assert _recommendations(engine, settings) != before

    report = TrainingRunService(settings, engine).switch_to(first, "rollback")

    assert report is None  # nothing was written since the switch: no rebuild needed
    with UnitOfWork(engine) as uow:
        assert uow.models.active_version() == first
        assert uow.models.get(second).status is ModelStatus.RETIRED  # type: ignore[union-attr]
    assert _recommendations(engine, settings) == before


def test_a_rollback_after_new_interactions_rebuilds_the_old_version_first(
    database_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = trainer_settings(Settings(), database_url, promotion_tolerance=1.0)
    interactions = stream_interactions()
    store(engine, interactions)
    first = activate_with_state(engine, settings, trained_model(settings, interactions))
    _promote_a_different_model(engine, settings)
    # Interactions the retired version never saw: its stored state is stale now.
    store(
        engine,
        [
            Interaction(f"u{user}", f"i{200 + user % 50}", 1.0, f"new-{user}", "like", 2e9)
            for user in range(0, 400, 3)
        ],
    )
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)

    main(["models", "rollback", "--reason", "the test rolls back"])
    main(["models", "list"])
    main(["models", "show", str(first)])

    output = capsys.readouterr().out
    assert f"version {first} is active: rebuilt 400 users" in output
    assert "the test rolls back" in output
    with UnitOfWork(engine) as uow:
        assert uow.models.active_version() == first
    assert differences(reference_snapshot(engine, settings, first), snapshot(engine, first)) == []


def test_promoting_an_unknown_or_the_active_version_is_refused_with_the_reason(
    database_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = trainer_settings(Settings(), database_url)
    store(engine, stream_interactions()[:50])
    active = activate_with_state(engine, settings, trained_model(settings, stream_interactions()))
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)

    for arguments in (["promote", "999999"], ["promote", str(active)], ["rollback"]):
        with pytest.raises(SystemExit) as exit_status:
            main(["models", *arguments])
        assert exit_status.value.code == 2

    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        "streamrec: model version 999999 is not registered",
        f"streamrec: model version {active} is already active",
        "streamrec: no earlier active version to roll back to",
    ]
