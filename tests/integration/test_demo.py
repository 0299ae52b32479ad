"""``streamrec demo`` end to end, as a user runs it: a short replay in a fresh directory, with
the real local broker and SQLite; afterwards nothing may be left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamrec.broker import RECORD_FILE_NAME, BrokerBinaryNotFoundError, find_broker_binary

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEMO_EVENTS = 3000
DEMO_TIMEOUT_SECONDS = 300


@pytest.fixture(autouse=True)
def _broker_binary() -> None:
    try:
        find_broker_binary()
    except BrokerBinaryNotFoundError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the demo: {error}")
        pytest.skip(str(error))


def _demo(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("STREAMREC_")
    }
    environment["STREAMREC_DATA_DIR"] = str(directory / "data")
    environment["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "streamrec.cli.main", "demo", *arguments],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
        check=False,
    )


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z"


def test_short_demo_runs_end_to_end_and_leaves_nothing_running(tmp_path: Path) -> None:
    completed = _demo(tmp_path, "--limit", str(DEMO_EVENTS), "--training-steps", "10")
    output = completed.stdout + completed.stderr

    assert completed.returncode == 0, output
    started = re.search(r"started a local broker at \S+ \(pid (\d+)\)", output)
    assert started is not None, output
    assert f"{DEMO_EVENTS}/{DEMO_EVENTS}" in output
    assert f"{DEMO_EVENTS:,} events replayed and applied" in output
    rates = re.search(r"│ streamrec\s+│ (\d\.\d{3}) │", output)
    assert rates is not None, output
    assert 0.0 <= float(rates.group(1)) <= 1.0
    # A few users' recommendations, with the bundled titles (years in parentheses).
    assert len(re.findall(r"^user \S+: \d+ interactions", output, flags=re.MULTILINE)) == 3
    assert re.search(r"│\s+1 │ .+\(\d{4}\)\s+│", output), output
    # Each user gets the ten asked for (a short list is filled), with what the scores mean.
    assert len(re.findall(r"^│ 10 │", output, flags=re.MULTILINE)) == 3, output
    words = " ".join(output.split())
    assert words.count("score = retrieval + 0.5 log(vote), on no fixed scale") == 3, output
    assert "Traceback" not in output

    assert _process_gone(int(started.group(1)))
    assert not (tmp_path / "data" / RECORD_FILE_NAME).exists()

    # A second run would replay into a database that has the events already: refused, with
    # the way out, before anything is started.
    again = _demo(tmp_path, "--limit", "10")
    assert again.returncode == 2
    assert "--reset" in again.stderr
    assert "started a local broker" not in again.stdout
