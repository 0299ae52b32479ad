"""A newcomer's first hour, scripted: in a fresh directory with its own data directory (SQLite,
the local broker), every command of the README's commands table is run as documented, for
real; the benchmarks as tiny runs (a handful of users, two training steps, a few hundred
events), the ones that measure PostgreSQL on the test server's scratch schemas, and only
``bench pipeline``, minutes long even tiny, with ``--help``. ``streamrec serve`` runs for real
on a free port, its API and dashboard asked for the demo's user. None may print a traceback,
each must exit with the documented status, and nothing may be left running at the end.

The walk fails, too, when the README lists a command (or a subcommand) the walk does not
run: a new command gets its step here when it gets its row there."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streamrec.broker import BrokerBinaryNotFoundError, find_broker_binary
from tests.integration.process_tree import (
    PROC,
    alive,
    command_line,
    require_proc,
    streamrec_environment,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FIXTURE_MOVIELENS = ROOT / "tests" / "data" / "ml-latest"
COMMAND_TIMEOUT_SECONDS = 240
USER_ERROR = 2


@dataclass(frozen=True)
class Step:
    """One command of the walk: its arguments, the exit status the docs give, a text its
    output must hold, and variables added to the walk's environment."""

    arguments: tuple[str, ...]
    status: int = 0
    says: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


def readme_commands() -> set[tuple[str, str | None]]:
    """(command, subcommand or None) for each command of the README's commands table:
    ``streamrec broker start|status|stop`` gives (broker, start), (broker, status), ..."""
    text = README.read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    found: set[tuple[str, str | None]] = set()
    for line in table.splitlines():
        if not line.startswith("| `streamrec "):
            continue
        first_cell = line.split(" | ", 1)[0]
        for usage in re.findall(r"`streamrec ([^`]+)`", first_cell):
            words = usage.replace("\\|", "|").split()
            command, rest = words[0], words[1:]
            # A subcommand is a word; options, arguments (USER) and [brackets] are not.
            if rest and re.fullmatch(r"[a-z][a-z|-]*", rest[0]):
                found.update((command, subcommand) for subcommand in rest[0].split("|"))
            else:
                found.add((command, None))
    return found


def walked_commands(steps: Sequence[Step]) -> set[tuple[str, str | None]]:
    walked: set[tuple[str, str | None]] = set()
    for step in steps:
        words = [word for word in step.arguments if not word.startswith("-")]
        if words:
            walked.add((words[0], None))
            if len(words) > 1:
                walked.add((words[0], words[1]))
    return walked


BEFORE_ANY_DATABASE = [
    Step(("--help",), says="Commands:"),
    Step(("config", "show"), says='"data_dir"'),
    Step(("config", "docs"), says="# Configuration reference"),
    # Before any migration: one line saying what to run, and no database file made.
    Step(("status",), USER_ERROR, "streamrec db upgrade"),
    Step(("bench", "serve-latency"), USER_ERROR, "streamrec db upgrade"),
]
MIGRATION = [Step(("db", "upgrade")), Step(("db", "current"))]
# On a broker of its own, which it stops again.
DEMO = Step(("demo", "--limit", "1500", "--training-steps", "5"), says="nothing is left")


# The benchmarks' tiny runs; the evaluation's settings file gives two training steps.
REPEAT_FIVE_USERS_ONCE = ("--steps", "2", "--users", "5", "--repeats", "1")
TINY_EVALUATION = ("--methods", "streamrec,popularity", "--latency-users", "0", "--no-progress")
TINY_EVALUATION += ("--output-dir", "results", "--config", "two-steps.toml")
TINY_TRAINER = ("--sizes", "1000", "--steps", "1", "--items", "50", "--drift-users", "0")
TINY_TRAINER += ("--interactions-per-user", "2", "--rebuild-users", "100")
TINY_TRAINER += ("--pretraining-steps", "1")
TWO_STEPS_CONFIG = "[training]\nsteps = 2\n"


def after_the_demo(user: str, postgresql_url: str | None) -> list[Step]:
    """The commands a newcomer tries next, on what the demo stored (``user``: one it
    showed); the benchmarks that measure PostgreSQL on ``postgresql_url``'s server, if
    any."""
    movielens = str(FIXTURE_MOVIELENS)
    evaluation = ("eval", "--dataset", movielens, "--protocol", "loo", "--methods", "popularity")
    evaluation += ("--latency-users", "0", "--no-progress", "--output-dir", "results")
    return [
        Step(("status",)),
        Step(("recommend", user), says=user),
        Step(("recommend", user, "--explain"), says="share of the vote"),
        Step(("recommend", "someone-new"), says="unknown user: the global shortlist"),
        Step(("models", "list"), says="model versions"),
        Step(("models", "show", "1"), says='"status": "active"'),
        Step(("train", "dataset", "--dataset", movielens, "--steps", "2", "--no-progress")),
        Step(("models", "rollback"), says="version 1 is active"),
        Step(("models", "promote", "2"), says="version 2 is active"),
        Step(("trainer", "--once", "--no-control")),
        Step(("broker", "start"), says="running at"),
        Step(("broker", "status"), says="running at"),
        Step(("replay", "--dataset", "ml-latest-small", "--limit", "300")),
        # The demo's broker kept its messages in memory only; the offsets the demo stored lie
        # past the new broker's topics: the runbook's way on.
        Step(("consume", "--reset-offsets", "earliest", "--idle-exit", "2")),
        Step(("train", "now", "--reason", "the newcomer walk")),
        Step(evaluation, says="popularity"),
        # The benchmarks use the broker that runs (the others start their own and stop it).
        *tiny_benchmarks(),
        *(postgresql_benchmarks(postgresql_url) if postgresql_url is not None else []),
        Step(("broker", "stop")),
        # Exit status 1 when no broker runs, so that scripts can test it.
        Step(("broker", "status"), 1, "stopped"),
        Step(("db", "downgrade", "base")),
    ]


def tiny_benchmarks() -> list[Step]:
    """The README's benchmarks as tiny runs, about a minute and a half together on two cores:
    those that work on the data directory, and an offline evaluation of the cold-users
    protocol with streamrec trained for two steps (``--config`` after the subcommand)."""
    movielens = str(FIXTURE_MOVIELENS)
    return [
        # On what the demo stored: the database serves a version.
        Step(("bench", "serve-latency", "--users", "3", "--repeats", "1"), says="p50"),
        Step(("bench", "prequential", "--limit", "300", "--training-steps", "2"), says="HR@20"),
        Step(
            ("bench", "recommendation-latency", "--dataset", movielens, *REPEAT_FIVE_USERS_ONCE),
            says="p99",
        ),
        Step(
            ("eval", "--dataset", movielens, "--protocol", "cold-users", *TINY_EVALUATION),
            says="streamrec",
        ),
    ]


def postgresql_benchmarks(database_url: str) -> list[Step]:
    """The benchmarks that measure PostgreSQL, tiny, on scratch schemas of the test server
    (created and dropped by each run)."""
    on_postgresql = {"STREAMREC_DATABASE_URL": database_url}
    return [
        Step(
            ("bench", "soak", "--events", "600", "--sample-every", "300"),
            says="resident",
            environment=on_postgresql,
        ),
        Step(
            ("bench", "trainer", *TINY_TRAINER),
            says="stored users",
            environment=on_postgresql,
        ),
    ]


# Long-running commands: their help, which must not need a database or a broker. Run in
# the test's own process: a process per help text would add a second and a half each.
HELP_OF_LONG_RUNNING = [
    Step((*command, "--help"), says="Usage:")
    for command in (
        ("bench", "pipeline"),
        ("serve",),
        ("consume",),
        ("trainer",),
        ("train", "now"),
    )
]
# Without PostgreSQL (not in CI, where it is required) its benchmarks show their help only.
HELP_WITHOUT_POSTGRESQL = [
    Step(("bench", name, "--help"), says="Usage:") for name in ("soak", "trainer")
]


def _run(arguments: Sequence[str], cwd: Path, environment: dict[str, str]) -> tuple[int, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "streamrec.cli.main", *arguments],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


SERVE_READY_SECONDS = 60


def _serve_and_ask(
    cwd: Path, environment: dict[str, str], user: str
) -> tuple[int, str, dict[str, int]]:
    """Start ``streamrec serve`` on a free port, ask its API and dashboard for ``user``, stop
    it with SIGTERM; its exit status, its output and the HTTP status of each path."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamrec.cli.main", "serve", "--port", str(port)],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    answers: dict[str, int] = {}
    try:
        deadline = time.monotonic() + SERVE_READY_SECONDS
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    answers["/healthz"] = response.status
                    break
            except OSError:
                time.sleep(0.2)
        for path in (
            f"/api/users/{user}/recommendations",
            "/dashboard",
            f"/dashboard/users/{user}",
        ):
            try:
                with urllib.request.urlopen(f"{base}{path}", timeout=30) as response:
                    answers[path] = response.status
            except OSError as error:
                answers[path] = getattr(error, "code", 0)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    return server.returncode, output, answers


def _run_here(arguments: Sequence[str]) -> tuple[int, str]:
    """``streamrec ARGUMENTS`` in this process (for help texts)."""
    from click.testing import CliRunner

    from streamrec.cli.main import cli

    result = CliRunner().invoke(cli, list(arguments), prog_name="streamrec")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return 1, f"{result.output}\n{result.exception!r}"
    return result.exit_code, result.output


def _processes_in(directory: Path) -> list[int]:
    """Living processes whose working directory is ``directory`` or below: what the walk's
    commands started (every child inherits the directory)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path((entry / "cwd").readlink())
        except OSError:
            continue
        if cwd.is_relative_to(directory) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def test_readme_commands_are_parsed() -> None:
    commands = readme_commands()
    assert {("demo", None), ("broker", "start"), ("db", "downgrade"), ("status", None)} <= commands
    assert ("models", "rollback") in commands and ("config", "docs") in commands


@pytest.mark.timeout(1200)
def test_a_newcomer_runs_every_documented_command(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_proc()
    try:
        find_broker_binary()
    except BrokerBinaryNotFoundError as error:
        pytest.skip(str(error))
    try:
        postgresql_url: str | None = request.getfixturevalue("postgresql_server_url")
    except pytest.skip.Exception:
        postgresql_url = None
    data_dir = tmp_path / "data"
    environment = streamrec_environment(data_dir)
    (tmp_path / "two-steps.toml").write_text(TWO_STEPS_CONFIG, encoding="utf-8")
    problems: list[str] = []

    def judge(step: Step, status: int, output: str) -> None:
        shown = f"`streamrec {' '.join(step.arguments)}`"
        if "Traceback" in output:
            problems.append(f"{shown} printed a traceback:\n{output}")
        if status != step.status:
            problems.append(f"{shown} exited {status}, not {step.status}:\n{output}")
        elif step.says is not None and step.says not in output:
            problems.append(f"{shown} did not say {step.says!r}:\n{output}")

    def walk(steps: Sequence[Step]) -> list[str]:
        outputs = []
        for step in steps:
            status, output = _run(step.arguments, tmp_path, {**environment, **step.environment})
            judge(step, status, output)
            outputs.append(output)
        return outputs

    walk(BEFORE_ANY_DATABASE)
    assert not (data_dir / "streamrec.db").exists(), "a read-only command made a database"
    walk(MIGRATION)
    [demo_output] = walk([DEMO])
    # streamrec beside the baselines of the same batches, and no spurious warning.
    for method in ("streamrec", "popularity, decayed", "co-occurrence"):
        assert f"│ {method} " in demo_output, demo_output
    assert "WARNING" not in demo_output, demo_output
    shown_user = re.search(r"^user (\S+): \d+ interactions", demo_output, flags=re.MULTILINE)
    assert shown_user is not None, demo_output
    status, output, answers = _serve_and_ask(tmp_path, environment, shown_user.group(1))
    if "Traceback" in output:
        problems.append(f"`streamrec serve` printed a traceback:\n{output}")
    if set(answers.values()) != {200}:
        problems.append(f"`streamrec serve` answered {answers}:\n{output}")
    # uvicorn shuts down cleanly, then ends by the signal it was sent, as a shell expects.
    if status != -signal.SIGTERM or "Application shutdown complete" not in output:
        problems.append(f"`streamrec serve` did not stop cleanly on SIGTERM ({status}):\n{output}")
    after = after_the_demo(shown_user.group(1), postgresql_url)
    walk(after)
    helped = [*HELP_OF_LONG_RUNNING, *(HELP_WITHOUT_POSTGRESQL if postgresql_url is None else [])]
    for step in helped:
        judge(step, *_run_here(step.arguments))

    assert not problems, "\n\n".join(problems)
    assert (tmp_path / "results" / "eval-ml-latest-loo-seed0-methods-popularity.json").exists()
    assert sorted(path.name for path in (tmp_path / "bench" / "results").glob("*.json"))
    assert not (tmp_path / "docs").exists(), "a command wrote a document it was not asked to"
    left = _processes_in(tmp_path)
    assert not left, f"left running: {[command_line(pid) for pid in left]}"
    walked = walked_commands([*BEFORE_ANY_DATABASE, *MIGRATION, DEMO, *after, *helped])
    missing = readme_commands() - walked
    assert not missing, f"README commands the walk does not run: {sorted(map(str, missing))}"
