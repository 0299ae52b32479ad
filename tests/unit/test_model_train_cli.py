"""``streamrec train``: trains on a dataset, registers the model and makes it active."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.cli.main import main
from streamrec.state import ModelStatus
from streamrec.storage import UnitOfWork, create_database_engine
from streamrec.storage.migrations import upgrade


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{(tmp_path / 'streamrec.db').as_posix()}"
    upgrade(url)
    monkeypatch.setenv("STREAMREC_DATABASE_URL", url)
    # Small model and few users per step: the command's plumbing is what is tested here.
    monkeypatch.setenv("STREAMREC_MODEL__HASH_BUCKETS", "1024")
    monkeypatch.setenv("STREAMREC_MODEL__CLUSTERS", "4")
    monkeypatch.setenv("STREAMREC_TRAINING__USERS_PER_STEP", "32")
    return url


def statuses(url: str) -> dict[int, ModelStatus]:
    engine = create_database_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            return {model.version: model.status for model in uow.models.list()}  # type: ignore[misc]
    finally:
        engine.dispose()


def test_training_twice_leaves_the_second_model_active_and_the_first_retired(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        main(["train", "--dataset", "synthetic", "--steps", "2", "--threads", "1", "--no-progress"])
    output = capsys.readouterr().out
    assert "parameters" in output and "model version 2 is active" in output
    assert statuses(database) == {1: ModelStatus.RETIRED, 2: ModelStatus.ACTIVE}


def test_an_unknown_dataset_ends_with_one_line_and_status_2(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "no-such-dataset"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("streamrec: dataset 'no-such-dataset' not found")
    assert "\n" not in error
    assert statuses(database) == {}
