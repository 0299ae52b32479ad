"""Tables are printed whole at 80 columns, in a pipe and in a terminal, and a demo user's
list that is shorter than the ten shown says why."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from streamrec.cli import demo
from streamrec.config import Settings
from streamrec.events import RecommendationMessage, RecommendedItem
from streamrec.services import recommending
from streamrec.state import Interaction, ModelStatus, ModelVersion
from streamrec.storage import UnitOfWork, create_database_engine
from streamrec.storage.migrations import upgrade

# Longer than any column rich would give it at 80 columns, with words that must stay whole.
REASON = "promoted by an operator after the drift alarm of the night shift: candidate better"
NARROW_TERMINAL_COLUMNS = 80
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MOMENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture
def data_dir_with_two_versions(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'streamrec.db'}"
    upgrade(url)
    engine = create_database_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            for status in (ModelStatus.RETIRED, ModelStatus.ACTIVE):
                uow.models.add(ModelVersion(None, status, {"kind": "test"}, b"", reason=REASON))
            uow.commit()
    finally:
        engine.dispose()
    return data_dir


def _environment(data_dir: Path) -> dict[str, str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("STREAMREC_")
    }
    environment["STREAMREC_DATA_DIR"] = str(data_dir)
    environment["COLUMNS"] = str(NARROW_TERMINAL_COLUMNS)
    return environment


def _assert_whole(output: str) -> None:
    assert "…" not in output, output
    # Each version's creation and the active one's promotion, whole.
    assert len(MOMENT.findall(output)) == 3, output
    for word in REASON.split():
        assert word in output, output
    assert "retired" in output and "active" in output, output


def test_models_list_in_a_pipe_of_80_columns_prints_every_cell_whole(
    data_dir_with_two_versions: Path,
) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "streamrec.cli.main", "models", "list"],
        env=_environment(data_dir_with_two_versions),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    _assert_whole(completed.stdout)
    # Not a terminal: one line per version, the reason included, for grep and logs.
    assert sum(REASON in line for line in completed.stdout.splitlines()) == 2


def test_models_list_in_a_terminal_of_80_columns_wraps_but_cuts_nothing(
    data_dir_with_two_versions: Path,
) -> None:
    controller, terminal = pty.openpty()
    window = struct.pack("HHHH", 40, NARROW_TERMINAL_COLUMNS, 0, 0)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, window)
    environment = _environment(data_dir_with_two_versions)
    environment.pop("COLUMNS")  # the terminal says how wide it is
    environment["TERM"] = "xterm"
    process = subprocess.Popen(
        [sys.executable, "-m", "streamrec.cli.main", "models", "list"],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) == 0
    output = ANSI_ESCAPE.sub("", b"".join(chunks).decode("utf-8", errors="replace"))
    _assert_whole(output)


def test_a_demo_user_with_a_short_list_is_told_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'streamrec.db'}"
    upgrade(url)
    engine = create_database_engine(url)
    shortlist = [(f"i{number}", 1.0 - number / 100) for number in range(12)]
    seen = [f"i{number}" for number in range(9)]  # three of the twelve left
    with UnitOfWork(engine) as uow:
        uow.interactions.save_many(
            Interaction("heavy", item, 1.0, f"e-{item}", "rating", 1e9) for item in seen
        )
        uow.commit()
    left = tuple(RecommendedItem(item, score) for item, score in shortlist[9:])
    voted = recommending.VotedList(
        RecommendationMessage("heavy", left, 1, ((0, 1.0),), 1e9), {0: shortlist}, None
    )
    monkeypatch.setattr(recommending, "voted_for_user", lambda *_, **__: voted)
    console = Console(width=100, record=True, file=open(os.devnull, "w"))  # noqa: SIM115

    demo._show_recommendations(Settings(), engine, [SimpleNamespace(user_id="heavy")], 1, console)
    engine.dispose()

    output = console.export_text()
    assert "user heavy: 9 interactions" in output
    assert (
        "3 of 10 items: the user has already interacted with 9 of the 12 items on the "
        "clusters' shortlists"
    ) in output
    # What the scores are is said under the table.
    assert "score = the clusters' vote" in " ".join(output.split())
