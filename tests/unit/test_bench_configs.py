"""``streamrec bench configs``: whole configurations compared on validation users."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from streamrec.cli.main import cli

TINY_TRAINING = {"STREAMREC_TRAINING__STEPS": "5", "STREAMREC_TRAINING__USERS_PER_STEP": "16"}


def run_configs(configurations: str, output_dir: Path) -> Result:
    """``streamrec bench configs`` on the small test dataset, with a tiny training."""
    return CliRunner().invoke(
        cli,
        [
            "bench",
            "configs",
            "--dataset",
            "tests/data/ml-100k",
            "--configs",
            configurations,
            "--no-progress",
            "--output-dir",
            str(output_dir),
        ],
        env=TINY_TRAINING,
    )


def test_each_configuration_trains_and_is_measured_on_validation_users(tmp_path) -> None:
    config_file = tmp_path / "few-clusters.toml"
    config_file.write_text("[model]\nclusters = 4\n", encoding="utf-8")
    output = tmp_path / "results"
    result = run_configs(f"configured,{config_file}+serving.shortlist_length=50", output)
    assert result.exit_code == 0, result.output
    [json_file] = output.glob("*.json")
    # Named by the files and a digest of the list, whatever its length.
    assert json_file.name.startswith("configs-ml-100k-cold-users-seed0-configured-few-clusters-")
    assert "shortlist_length" not in json_file.name
    run = json.loads(json_file.read_text(encoding="utf-8"))
    rows = run["configurations"]
    assert list(rows) == ["configured", f"{config_file}+serving.shortlist_length=50"]
    changed = rows[f"{config_file}+serving.shortlist_length=50"]
    assert changed["file"] == str(config_file)
    assert changed["changes"] == {"serving": {"shortlist_length": 50}}
    # The settings each row ran with: the environment's tiny training, and the row's own.
    tiny = {"training.steps": 5, "training.users_per_step": 16}
    assert rows["configured"]["settings"] == tiny
    assert changed["settings"] == tiny | {"model.clusters": 4, "serving.shortlist_length": 50}
    # The validation users, not the test users, are what is scored.
    assert run["validation"]["test_users"] < run["validation"]["train_users"]
    for row in rows.values():
        assert 0.0 <= row["scores"]["precision@50"] <= 1.0
    assert "| configured |" in result.output


def test_a_wrong_setting_stops_the_run_before_any_training(tmp_path) -> None:
    result = run_configs("configured+model.clusters=-3", tmp_path)
    assert result.exit_code == 2
    assert "model.clusters" in result.output or "clusters" in result.output
    assert list(tmp_path.iterdir()) == []
