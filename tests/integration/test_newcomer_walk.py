"""A newcomer's first hour, scripted: in a fresh directory with its own data directory (SQLite,
the local broker), every command of the README's commands table is run as documented, the
quick ones for real and the long-running ones (benchmarks, the API server) with ``--help``.
None may print a traceback, each must exit with the documented status, and nothing may be
left running at the end.

The walk fails, too, when the README lists a command (or a subcommand) the walk does not
run: a new command gets its step here when it gets its row there."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
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
    """One command of the walk: its arguments, the exit status the docs give, and a text its
    output must hold."""

    arguments: tuple[str, ...]
    status: int = 0
    says: str | None = None


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
]
MIGRATION = [Step(("db", "upgrade")), Step(("db", "current"))]
# On a broker of its own, which it stops again.
DEMO = Step(("demo", "--limit", "1500", "--training-steps", "5"), says="nothing is left")


def after_the_demo(user: str) -> list[Step]:
    """The commands a newcomer tries next, on what the demo stored (``user``: one it
    showed)."""
    movielens = str(FIXTURE_MOVIELENS)
    evaluation = ("eval", "--dataset", movielens, "--protocol", "loo", "--methods", "popularity")
    evaluation += ("--latency-users", "0", "--no-progress", "--output-dir", "results")
    return [
        Step(("status",)),
        Step(("recommend", user), says=user),
        Step(("recommend", user, "--explain"), says="voted by"),
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
        Step(("broker", "stop")),
        # Exit status 1 when no broker runs, so that scripts can test it.
        Step(("broker", "status"), 1, "stopped"),
        Step(("db", "downgrade", "base")),
    ]


# Long-running commands: their help, which must not need a database or a broker. Run in
# the test's own process: a process per help text would add a second and a half each.
HELP_OF_LONG_RUNNING = [
    Step((*command, "--help"), says="Usage:")
    for command in (
        ("bench", "pipeline"),
        ("bench", "prequential"),
        ("bench", "trainer"),
        ("bench", "recommendation-latency"),
        ("bench", "soak"),
        ("bench", "serve-latency"),
        ("serve",),
        ("consume",),
        ("trainer",),
        ("train", "now"),
    )
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


@pytest.mark.timeout(900)
def test_a_newcomer_runs_every_documented_command(tmp_path: Path) -> None:
    require_proc()
    try:
        find_broker_binary()
    except BrokerBinaryNotFoundError as error:
        pytest.skip(str(error))
    data_dir = tmp_path / "data"
    environment = streamrec_environment(data_dir)
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
            status, output = _run(step.arguments, tmp_path, environment)
            judge(step, status, output)
            outputs.append(output)
        return outputs

    walk(BEFORE_ANY_DATABASE)
    assert not (data_dir / "streamrec.db").exists(), "a read-only command made a database"
    walk(MIGRATION)
    [demo_output] = walk([DEMO])
    shown_user = re.search(r"^user (\S+): \d+ interactions", demo_output, flags=re.MULTILINE)
    assert shown_user is not None, demo_output
    after = after_the_demo(shown_user.group(1))
    walk(after)
    for step in HELP_OF_LONG_RUNNING:
        judge(step, *_run_here(step.arguments))

    assert not problems, "\n\n".join(problems)
    assert (tmp_path / "results" / "eval-ml-latest-loo-seed0-methods-popularity.json").exists()
    assert not (tmp_path / "docs").exists(), "a command wrote a document it was not asked to"
    left = _processes_in(tmp_path)
    assert not left, f"left running: {[command_line(pid) for pid in left]}"
    walked = walked_commands(
        [*BEFORE_ANY_DATABASE, *MIGRATION, DEMO, *after, *HELP_OF_LONG_RUNNING]
    )
    missing = readme_commands() - walked
    assert not missing, f"README commands the walk does not run: {sorted(map(str, missing))}"
