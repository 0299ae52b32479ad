"""``python -m consumers`` and ``python -m trainer``: each process's own entry point runs the
same wiring as ``streamrec consume`` and ``streamrec trainer`` (``consumers.wiring``,
``trainer.wiring``), and ends without a traceback: with its help, with one line for a wrong
setting, and after a short real run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.storage import UnitOfWork
from tests.integration.pipeline_support import (
    REPOSITORY,
    catalogue,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    produce,
    register_model,
    settings_environment,
)

TIMEOUT_SECONDS = 180
on_sqlite = pytest.mark.parametrize("database_backend", ["sqlite"])


def run_module(
    module: str, *arguments: str, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )


def environment_of(settings: Settings) -> dict[str, str]:
    # No metrics endpoint: parallel test processes would fight over the port.
    return {**settings_environment(settings), "STREAMREC_OBSERVABILITY__METRICS_PORT": "0"}


@pytest.mark.parametrize("module", ["consumers", "trainer"])
def test_the_entry_points_show_their_help(module: str) -> None:
    finished = run_module(module, "--help")
    assert finished.returncode == 0, finished.stderr
    assert f"Usage: python -m {module} [OPTIONS]" in finished.stdout
    assert "--config FILE" in finished.stdout
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize("module", ["consumers", "trainer"])
def test_a_wrong_setting_ends_in_one_line(module: str) -> None:
    environment = {**environment_of(Settings()), "STREAMREC_KAFKA__MAX_POLL_RECORDS": "0"}
    finished = run_module(module, environment=environment)
    assert finished.returncode == 2
    [line] = finished.stderr.splitlines()
    assert line.startswith(f"python -m {module}: invalid settings: kafka.max_poll_records")


@on_postgresql
def test_python_m_consumers_consumes_until_idle(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    register_model(engine, settings)
    events = interaction_stream(60, seed=2)
    produce(settings, events, catalogue())

    finished = run_module("consumers", "--idle-exit", "1", environment=environment_of(settings))

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "Traceback" not in finished.stderr
    assert f"consumed {len(events) + len(catalogue())} records in" in finished.stdout
    with UnitOfWork(engine) as uow:
        stored = uow.interactions.for_users({event.user_id for event in events})
    assert {(row.user_id, row.item_id) for rows in stored.values() for row in rows} == {
        (event.user_id, event.item_id) for event in events
    }


@on_sqlite
def test_python_m_trainer_once_runs_one_run(database_url: str) -> None:
    environment = {**environment_of(Settings()), "STREAMREC_DATABASE_URL": database_url}
    finished = run_module("trainer", "--once", environment=environment)

    # Without an active version there is nothing to fine-tune: the run is recorded, skipped.
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout.startswith("run 1: skipped: no active model version")
