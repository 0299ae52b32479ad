"""No command and no log line shows a secret: planted passwords never appear in any output.

The secrets are planted where an operator would put them: the database URL's user
information and query parameters, and the Kafka SASL password. Every command that finishes
quickly without a running broker then runs against them, and its whole output (stdout and
stderr, logs included, at DEBUG) is searched for the planted values.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streamrec.cli.main import cli
from streamrec.config import ObservabilitySettings
from streamrec.observability import configure_logging
from streamrec.redaction import mask_secrets

PLANTED = ("PLANTED1", "PLANTED2", "PLANTED3", "PLANTED4", "PLANTED5")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in [name for name in os.environ if name.startswith("STREAMREC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STREAMREC_TIMEOUTS__KAFKA_BOOTSTRAP_MS", "1000")
    root, kafka_logger = logging.getLogger(), logging.getLogger("kafka")
    handlers, level, kafka_level = list(root.handlers), root.level, kafka_logger.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    kafka_logger.setLevel(kafka_level)


def planted_environment(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "STREAMREC_DATABASE_URL": database_url,
        "STREAMREC_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}",
        "STREAMREC_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "STREAMREC_KAFKA__SASL_MECHANISM": "PLAIN",
        "STREAMREC_KAFKA__SASL_USERNAME": "streamrec",
        "STREAMREC_KAFKA__SASL_PASSWORD": "PLANTED4",
        "STREAMREC_OBSERVABILITY__LOG_LEVEL": "DEBUG",
        "STREAMREC_OBSERVABILITY__METRICS_PORT": "0",
        **extra,
    }


def output_of(args: list[str], environment: dict[str, str]) -> str:
    result = CliRunner().invoke(cli, args, env=environment)
    shown = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown += repr(result.exception)  # what a traceback would print
    return shown


QUICK_COMMANDS = [
    ["config", "show"],
    ["status"],
    ["recommend", "u1"],
    ["recommend", "u1", "--json"],
    ["models", "list"],
    ["models", "show", "1"],
    ["models", "runs"],
    ["models", "promote", "1"],
    ["models", "rollback"],
    ["db", "current"],
    ["db", "upgrade"],
    ["db", "downgrade", "base"],
    ["consume", "--max-events", "1"],
    ["trainer", "--once"],
    ["train", "now"],
    ["broker", "status"],
]


# With an unreachable database and broker these stop at the first part they reach; with a
# working one they would serve, produce or train for long.
STOPPING_COMMANDS = [
    ["serve"],
    ["replay", "--dataset", "synthetic", "--limit", "5"],
    ["train", "dataset", "--dataset", "synthetic", "--steps", "1", "--no-progress"],
    ["bench", "serve-latency"],
    ["broker", "stop"],
    ["config", "docs"],
]
# Not run here, and why none can show a planted secret:
# - `demo` runs on its own local broker and SQLite database, not the configured ones;
# - `eval` and the other `bench` commands read datasets and write results, never the
#   configured database or broker (their own test suites run them);
# - `db downgrade` against the working database would undo the session's schema.


def test_every_command_is_run_here_or_said_why_not() -> None:
    run = {command[0] for command in QUICK_COMMANDS + STOPPING_COMMANDS}
    explained = {"demo", "eval"}
    assert set(cli.list_commands(click.Context(cli))) == run | explained


@pytest.mark.parametrize("command", QUICK_COMMANDS + STOPPING_COMMANDS, ids=" ".join)
def test_no_command_shows_a_planted_secret_of_an_unreachable_database(
    command: list[str],
) -> None:
    url = (
        f"postgresql+psycopg://u:PLANTED1@127.0.0.1:{closed_port()}/x"
        "?password=PLANTED2&sslpassword=PLANTED3"
    )

    shown = output_of(command, planted_environment(url))

    assert not [secret for secret in PLANTED if secret in shown], shown


# Not `db downgrade`: the test PostgreSQL schema is migrated once per session.
@pytest.mark.parametrize(
    "command",
    [command for command in QUICK_COMMANDS if command[:2] != ["db", "downgrade"]],
    ids=" ".join,
)
def test_no_command_shows_a_planted_secret_of_a_working_database(
    command: list[str], database_url: str
) -> None:
    # A password parameter the driver ignores (SQLite) or that trust authentication does not
    # check (the test PostgreSQL): the commands run for real, the broker part fails.
    separator = "&" if "?" in database_url else "?"
    url = f"{database_url}{separator}password=PLANTED2"

    shown = output_of(command, planted_environment(url))

    assert not [secret for secret in PLANTED if secret in shown], shown


def test_config_show_masks_secrets_and_keeps_the_rest() -> None:
    url = "postgresql+psycopg://u:PLANTED1@db.internal:5432/x?password=PLANTED2&sslmode=require"

    shown = json.loads(output_of(["config", "show"], planted_environment(url)))

    assert shown["database_url"] == (
        "postgresql+psycopg://u:***@db.internal:5432/x?password=***&sslmode=require"
    )
    assert shown["kafka"]["sasl_password"] == "***"
    assert shown["kafka"]["sasl_username"] == "streamrec"


def test_a_secret_in_an_unparseable_url_or_a_bad_setting_is_not_shown() -> None:
    unparseable = planted_environment("postgresql+psycopg://u:PLANTED1@[db/x?password=PLANTED2")
    bad_setting = planted_environment(
        "sqlite:///x.db", STREAMREC_KAFKA__BOOTSTRAP_SERVERS="u:PLANTED5@kafka"
    )

    for environment in (unparseable, bad_setting):
        for command in (["status"], ["db", "current"], ["config", "show"]):
            shown = output_of(command, environment)
            assert not [secret for secret in PLANTED if secret in shown], shown


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_debug_logs_mask_secrets_in_every_part_of_a_record(log_format: str) -> None:
    stream = io.StringIO()
    configure_logging(ObservabilitySettings(log_format=log_format, log_level="DEBUG"), stream)
    # configure_logging keeps kafka-python at WARNING; an operator debugging it lowers that.
    logging.getLogger("kafka").setLevel(logging.DEBUG)
    url = "postgresql+psycopg://u:PLANTED1@db/x?password=PLANTED2&sslpassword=PLANTED3"
    # As kafka-python logs its configuration: one mapping argument.
    logging.getLogger("kafka.admin.client").debug(
        "Starting KafkaAdminClient with configuration: %s",
        {"bootstrap_servers": "kafka:9092", "sasl_plain_password": "PLANTED4"},
    )
    logging.getLogger("some_driver").debug("connecting to %s", url)
    logging.getLogger("streamrec.test").info("batch stored", extra={"database": url})
    try:
        raise ConnectionError(f"cannot reach {url} token=PLANTED5")
    except ConnectionError:
        logging.getLogger("some_driver.pool").exception("connection failed")

    shown = stream.getvalue()

    for logged in (
        "Starting KafkaAdminClient",
        "connecting to",
        "batch stored",
        "connection failed",
    ):
        assert logged in shown
    assert not [secret for secret in PLANTED if secret in shown], shown


def test_the_masking_function_hides_every_kind_of_secret() -> None:
    lines = [
        "postgresql+psycopg://u:PLANTED1@db/x?password=PLANTED2&sslpassword=PLANTED3",
        "kafka config {'sasl_plain_password': 'PLANTED1', 'sasl_oauth_token': 'PLANTED2'}",
        '{"api_key": "PLANTED3", "client_secret": "PLANTED4"}',
        "https://service/?access_token=PLANTED5&page=2",
        "STREAMREC_KAFKA__SASL_PASSWORD=PLANTED1 streamrec consume",
        "fetching https://PLANTED2@registry.internal/simple/",
        "request headers {'Authorization': 'Bearer PLANTED3'}",
        "Authorization: Basic PLANTED4",
    ]
    for line in lines:
        masked = mask_secrets(line)
        assert not [secret for secret in PLANTED if secret in masked], masked
        assert "***" in masked
