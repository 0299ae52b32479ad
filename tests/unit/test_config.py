"""The settings object: sources and their priority, validation messages, masking, docs."""

import dataclasses
import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamrec.cli.main import cli
from streamrec.config import (
    ConfigurationError,
    ModelSettings,
    ServingSettings,
    Settings,
    load_settings,
    masked,
    settings_reference,
)
from streamrec.model.architecture import Architecture

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("STREAMREC_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings()
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.kafka.bootstrap_servers is None
    assert (
        settings.topics.interactions,
        settings.topics.items,
        settings.topics.recommendations,
        settings.topics.dead_letters,
        settings.topics.control,
    ) == ("interactions", "items", "recommendations", "dead-letters", "control")


def test_environment_overrides_file_which_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "streamrec.toml"
    config_file.write_text(
        '[model]\nclusters = 12\n[serving]\nshortlist_length = 30\n[topics]\nitems = "c"\n'
    )
    monkeypatch.setenv("STREAMREC_MODEL__CLUSTERS", "7")
    settings = load_settings(config_file)
    assert settings.model.clusters == 7  # environment wins
    assert settings.serving.shortlist_length == 30  # from the file
    assert settings.topics.items == "c"
    assert settings.serving.top_memberships == 5  # default


@pytest.mark.parametrize("shipped", sorted(REPOSITORY.glob("configs/*.toml")))
def test_the_shipped_settings_files_load_as_written(
    shipped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in [name for name in os.environ if name.startswith("STREAMREC_")]:
        monkeypatch.delenv(variable)
    settings = load_settings(shipped)  # raises for a key or value that is not valid
    written = tomllib.loads(shipped.read_text(encoding="utf-8"))
    assert written, "a settings file that sets nothing"
    for section, values in written.items():
        for name, value in values.items():
            assert getattr(getattr(settings, section), name) == value, f"{section}.{name}"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("STREAMREC_MODEL__CLUSTERS", "many", "model.clusters"),
        ("STREAMREC_MODEL__CLUSTERS", "0", "model.clusters"),
        ("STREAMREC_KAFKA__SECURITY_PROTOCOL", "TELNET", "kafka.security_protocol"),
        ("STREAMREC_TRAINER__SCHEDULE", "sometimes", "trainer.schedule"),
        ("STREAMREC_EVENTS__IMPLICIT_WEIGHTS", '{"click": 3}', "events.implicit_weights"),
    ],
)
def test_a_wrong_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert named in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_keys_in_the_file_are_errors(tmp_path: Path) -> None:
    config_file = tmp_path / "streamrec.toml"
    config_file.write_text("[model]\nclustres = 12\n")
    with pytest.raises(ConfigurationError, match=r"model\.clustres"):
        load_settings(config_file)


def test_the_model_section_is_what_a_version_stores_and_nothing_else(tmp_path: Path) -> None:
    # The schema and the statistics' landmark come from the training data, not from settings.
    from_data = {"schema", "statistics_time_landmark"}
    stored = {field.name for field in dataclasses.fields(Architecture)} - from_data
    assert set(ModelSettings.model_fields) == stored
    assert not stored & set(ServingSettings.model_fields)
    # A serving setting left under [model] is refused, named, not ignored.
    config_file = tmp_path / "streamrec.toml"
    config_file.write_text("[model]\nshortlist_length = 400\n")
    with pytest.raises(ConfigurationError, match=r"model\.shortlist_length"):
        load_settings(config_file)
    with pytest.raises(ValueError, match="ModelSettings has no setting rerank"):
        ModelSettings().model_copy(update={"rerank": False})


def test_the_timeouts_reach_the_kafka_clients() -> None:
    from streamrec.kafka import connection_options

    settings = Settings(
        kafka={"bootstrap_servers": "kafka-1:9092"}, timeouts={"kafka_bootstrap_ms": 1_234}
    )
    assert connection_options(settings, "test")["bootstrap_timeout_ms"] == 1_234


def test_a_broken_or_missing_file_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml"):
        load_settings(broken)
    with pytest.raises(ConfigurationError, match=r"missing\.toml"):
        load_settings(tmp_path / "missing.toml")


def test_secrets_are_masked() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://app:hunter2@db.example/streamrec",
        kafka={"sasl_password": "s3cret", "sasl_username": "app"},
    )
    shown = str(masked(settings))
    assert "hunter2" not in shown and "s3cret" not in shown
    assert "app:***@db.example" in shown


def test_config_show_prints_effective_settings_and_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("STREAMREC_MODEL__CLUSTERS", "9")
    shown = runner.invoke(cli, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    assert '"clusters": 9' in shown.output


def test_every_setting_is_documented_and_the_reference_is_current() -> None:
    reference = settings_reference()
    for row in reference.splitlines():
        if row.startswith("| `STREAMREC_"):
            assert not row.rstrip().endswith("|  |"), f"undocumented setting: {row}"
    assert (REPOSITORY / "docs" / "configuration.md").read_text() == reference, (
        "docs/configuration.md is stale: run `streamrec config docs > docs/configuration.md`"
    )
