"""What an operator sees when something is wrong: one line, a non-zero exit, nothing created.

Every case runs the real command through click's test runner (the same error handling as the
console script): bad settings, a missing, unmigrated or unreachable database, an unreachable
broker, a refused argument, and ``--config`` given after the subcommand.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streamrec.cli.main import cli
from streamrec.storage.migrations import head_revision


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [name for name in os.environ if name.startswith("STREAMREC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMREC_OBSERVABILITY__METRICS_PORT", "0")
    # A broker that does not answer is reported after one second, not ten.
    monkeypatch.setenv("STREAMREC_TIMEOUTS__KAFKA_BOOTSTRAP_MS", "1000")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    # Commands that set up logging leave a handler on the runner's closed stream.
    root.handlers[:] = handlers
    root.setLevel(level)


def closed_port() -> int:
    """A local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, args, env=env)
    # Anything but a clean exit would be a traceback for the operator.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def assert_one_line_failure(result: Result, *expected: str) -> str:
    output = result.output
    assert result.exit_code != 0, output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output
    for text in expected:
        assert text in output, output
    return output


def tree(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("STREAMREC_EVENTS__IMPLICIT_WEIGHTS", "{click: 0.5", "STREAMREC_EVENTS__IMPLICIT_WEIGHTS"),
        ("STREAMREC_KAFKA__BOOTSTRAP_SERVERS", "::::", "kafka.bootstrap_servers"),
        ("STREAMREC_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2", "'kafka-2'"),
        ("STREAMREC_KAFKA__SECURITY_PROTOCOL", "SASL_SSL", "needs sasl_mechanism"),
        ("STREAMREC_TRAINER__SCHEDULE", "cron:61 * * * *", "trainer.schedule"),
        ("STREAMREC_TRAINER__SCHEDULE", "cron:0 3 * *", "trainer.schedule"),
        ("STREAMREC_TRAINER__SCHEDULE", "interval:0", "trainer.schedule"),
        ("STREAMREC_MODEL__CLUSTERS", "many", "model.clusters"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(variable: str, value: str, named: str) -> None:
    result = invoke(["config", "show"], env={variable: value})

    assert_one_line_failure(result, "streamrec: invalid settings", named)


def test_a_bad_setting_in_a_config_file_given_after_the_subcommand_is_one_line(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "bad.toml"
    config_file.write_text('[trainer]\nschedule = "cron:0 25 * * *"\n')

    result = invoke(["config", "show", "--config", str(config_file)])

    assert_one_line_failure(result, "trainer.schedule")


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["recommend", "u1"],
        ["models", "list"],
        ["models", "show", "1"],
        ["models", "runs"],
        ["db", "downgrade", "base"],
        ["bench", "serve-latency", "--users", "2"],
    ],
)
def test_a_read_only_command_without_a_database_says_so_and_creates_nothing(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = invoke(command)

    assert_one_line_failure(
        result,
        "no database at .streamrec/streamrec.db: run `streamrec db upgrade` "
        "or set STREAMREC_DATABASE_URL",
    )
    assert tree(tmp_path) == set()


def test_config_show_and_db_current_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert invoke(["config", "show"]).exit_code == 0
    current = invoke(["db", "current"])

    assert current.exit_code == 0 and "no schema" in current.output
    assert tree(tmp_path) == set()


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["recommend", "u1"],
        ["models", "list"],
        ["consume", "--max-events", "1"],
        ["trainer", "--once"],
        ["train", "--dataset", "synthetic"],
    ],
)
def test_an_unmigrated_sqlite_database_says_to_upgrade(command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # an empty file: a database with no schema
    url = f"sqlite:///{path.as_posix()}"

    result = invoke(command, env={"STREAMREC_DATABASE_URL": url})

    assert_one_line_failure(
        result,
        f"database at {url} is not migrated (revision None, expected {head_revision()}): "
        "run `streamrec db upgrade`",
    )


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, away from the test's database file."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def test_serve_latency_on_a_database_serving_no_version_is_one_line(
    database_url: str, elsewhere: Path
) -> None:
    result = invoke(
        ["bench", "serve-latency", "--users", "2"], env={"STREAMREC_DATABASE_URL": database_url}
    )

    assert result.exit_code == 2
    assert_one_line_failure(result, "streamrec: no active model version: pass --dataset")
    assert tree(elsewhere) == set()


def test_a_database_never_migrated_says_to_upgrade(
    empty_database_url: str, database_backend: str
) -> None:
    result = invoke(["status"], env={"STREAMREC_DATABASE_URL": empty_database_url})

    # SQLite: the file does not exist (and is not created); PostgreSQL: an empty schema.
    expected = "no database at" if database_backend == "sqlite" else "is not migrated"
    assert_one_line_failure(result, expected, "run `streamrec db upgrade`")


def test_status_on_a_database_elsewhere_creates_nothing_here(
    database_url: str, elsewhere: Path
) -> None:
    result = invoke(["status"], env={"STREAMREC_DATABASE_URL": database_url})

    assert result.exit_code == 0, result.output
    assert "no Kafka broker" in result.output  # the broker part fails; the database part shows
    assert tree(elsewhere) == set()


@pytest.mark.parametrize(
    "command",
    [["status"], ["consume", "--max-events", "1"], ["db", "upgrade"], ["models", "list"]],
)
def test_an_unreachable_database_is_one_line(command: list[str]) -> None:
    url = f"postgresql+psycopg://reader@127.0.0.1:{closed_port()}/recs"

    result = invoke(command, env={"STREAMREC_DATABASE_URL": url})

    assert_one_line_failure(result, "cannot reach database postgresql+psycopg://reader@127.0.0.1")


def test_an_unreachable_broker_is_one_line(database_url: str) -> None:
    servers = f"127.0.0.1:{closed_port()}"
    environment = {"STREAMREC_DATABASE_URL": database_url}

    consumed = invoke(
        ["consume", "--max-events", "1"],
        env=environment | {"STREAMREC_KAFKA__BOOTSTRAP_SERVERS": servers},
    )
    no_broker = invoke(["consume", "--max-events", "1"], env=environment)

    assert_one_line_failure(consumed, f"Kafka at {servers} does not answer")
    assert_one_line_failure(no_broker, "no Kafka broker: run `streamrec broker start`")


def test_a_data_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocking_file = tmp_path / "file"
    blocking_file.write_text("")
    environment = {"STREAMREC_DATA_DIR": str(blocking_file / "data")}

    for command in (["db", "upgrade"], ["broker", "start"]):
        assert_one_line_failure(invoke(command, env=environment), str(blocking_file))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["recommend", ""], "user id: must not be empty"),
        (["recommend", "x" * 300], "the limit is 256"),
        (["recommend", "a\x00b"], "control character"),
        (["models", "show", "one"], "'one' is not a valid integer"),
        (["no-such-command"], "No such command"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_a_refused_argument_is_one_line(command: list[str], expected: str) -> None:
    result = invoke(command)

    assert result.exit_code == 2
    assert_one_line_failure(result, expected, "--help`)")


def test_config_goes_before_or_after_the_subcommand(tmp_path: Path) -> None:
    config_file = tmp_path / "streamrec.toml"
    config_file.write_text("[model]\nclusters = 9\n")
    other_file = tmp_path / "other.toml"
    other_file.write_text("[model]\nclusters = 11\n")

    before = invoke(["--config", str(config_file), "config", "show"])
    after = invoke(["config", "show", "--config", str(config_file)])
    on_the_group = invoke(["config", "--config", str(config_file), "show"])
    # The option nearer the command wins, as with any other option.
    both = invoke(["--config", str(other_file), "config", "show", "--config", str(config_file)])

    for result in (before, after, on_the_group, both):
        assert result.exit_code == 0, result.output
        assert '"clusters": 9' in result.output


def test_eval_reads_a_config_file_given_after_its_options(tmp_path: Path) -> None:
    config_file = tmp_path / "streamrec.toml"
    config_file.write_text(f'datasets_dir = "{(tmp_path / "datasets").as_posix()}"\n')

    result = invoke(["eval", "--dataset", "ml-1m", "--config", str(config_file)])

    assert_one_line_failure(result, f"looked in {tmp_path / 'datasets' / 'ml-1m'}")


def test_help_still_works_where_a_database_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = invoke(["status", "--help"])

    assert result.exit_code == 0 and "--config" in result.output
    assert tree(tmp_path) == set()
