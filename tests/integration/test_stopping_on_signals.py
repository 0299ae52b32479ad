"""``streamrec demo`` and the benchmarks stopped by SIGTERM or Ctrl-C (SIGINT) stop every
process they started (the local broker, consumer processes) before they exit, and say so in
one line with the status a shell expects (128 + the signal's number).

Each command runs as a user runs it, a child process in a scratch directory of its own; the
test waits until it has started what it starts, notes every process below it, signals it,
and checks after it exited that none of them is alive."""

from __future__ import annotations

import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from streamrec.broker import RECORD_FILE_NAME, BrokerBinaryNotFoundError, find_broker_binary
from tests.integration.process_tree import (
    WAIT_SECONDS,
    command_line,
    descendants,
    require_proc,
    start_streamrec,
    streamrec_environment,
    wait_until,
    wait_until_gone,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

# Enough events that the replay is still going when the test stops it.
DEMO_EVENTS = "30000"


@pytest.fixture(autouse=True)
def _needs_the_broker_and_proc() -> None:
    require_proc()
    try:
        find_broker_binary()
    except BrokerBinaryNotFoundError as error:
        pytest.skip(str(error))


def _stored_interactions(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as db:
            return int(db.execute("SELECT count(*) FROM interactions").fetchone()[0])
    except sqlite3.Error:  # not migrated yet, or busy
        return 0


def _stop_and_check(
    arguments: list[str],
    tmp_path: Path,
    signal_number: signal.Signals,
    started: str,
    ready: object,
    environment: dict[str, str] | None = None,
) -> str:
    """Run ``streamrec ARGUMENTS``, wait until ``ready(data_dir, pid)`` holds, send
    ``signal_number``; return the output after checking the exit and that nothing is left."""
    data_dir = tmp_path / "data"
    log = tmp_path / "output.txt"
    with open(log, "wb") as output:
        process = start_streamrec(
            arguments, tmp_path, environment or streamrec_environment(data_dir), output
        )
        try:
            wait_until(lambda: ready(data_dir, process.pid), started, process)  # type: ignore[operator]
            started_processes = descendants(process.pid)
            assert started_processes, "the command started no process"
            process.send_signal(signal_number)
            status = process.wait(timeout=WAIT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    left = wait_until_gone(started_processes)
    assert not left, f"still running: {[command_line(pid) for pid in left]}\n{text}"
    assert status == 128 + signal_number, text
    assert f"streamrec: stopped by {signal_number.name}" in text
    assert "Traceback" not in text
    assert not (data_dir / RECORD_FILE_NAME).exists(), "the broker's record was left behind"
    return text


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_demo_stopped_while_it_trains_stops_its_broker(
    tmp_path: Path, signal_number: signal.Signals
) -> None:
    def broker_started(data_dir: Path, _: int) -> bool:
        return (data_dir / RECORD_FILE_NAME).exists()

    text = _stop_and_check(
        ["demo", "--limit", DEMO_EVENTS, "--training-steps", "400"],
        tmp_path,
        signal_number,
        "the demo's broker to start",
        broker_started,
    )
    assert "stopped the local broker" in text


def test_demo_stopped_while_its_consumer_applies_events_stops_everything(
    tmp_path: Path,
) -> None:
    def applying(data_dir: Path, _: int) -> bool:
        return _stored_interactions(data_dir / "streamrec.db") > 0

    _stop_and_check(
        ["demo", "--limit", DEMO_EVENTS, "--training-steps", "5"],
        tmp_path,
        signal.SIGTERM,
        "the demo's consumer to apply events",
        applying,
    )


def test_prequential_benchmark_stopped_while_it_replays_stops_its_broker(
    tmp_path: Path,
) -> None:
    def replaying(_: Path, __: int) -> bool:
        output = (tmp_path / "output.txt").read_text(encoding="utf-8", errors="replace")
        return "steps on the first" in output  # the first model is trained

    arguments = ["bench", "prequential", "--dataset", "ml-latest-small", "--limit", "30000"]
    arguments += ["--training-steps", "5", "--output-dir", str(tmp_path / "results")]
    _stop_and_check(arguments, tmp_path, signal.SIGINT, "the benchmark's replay", replaying)
    assert not (tmp_path / "results").exists()


@pytest.mark.postgres
def test_pipeline_benchmark_stopped_while_its_consumers_run_stops_them(
    tmp_path: Path, postgresql_server_url: str
) -> None:
    def consumers_running(_: Path, pid: int) -> bool:
        return any(" consume" in command_line(child) for child in descendants(pid))

    environment = streamrec_environment(
        tmp_path / "data", STREAMREC_DATABASE_URL=postgresql_server_url
    )
    arguments = ["bench", "pipeline", "--events", "100000", "--consumers", "2"]
    arguments += ["--output-dir", str(tmp_path / "results")]
    text = _stop_and_check(
        arguments,
        tmp_path,
        signal.SIGTERM,
        "the benchmark's consumer processes",
        consumers_running,
        environment,
    )
    assert "stopped the local broker" in text
