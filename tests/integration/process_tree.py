"""What a command started, read from /proc (Linux): its descendants, their command lines, and
whether they are still alive. Tests of commands that must leave nothing running use it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import pytest

PROC = Path("/proc")
# Longest wait for a command to reach the state a test stops it in, or to exit: a stuck
# command fails the test instead of hanging it.
WAIT_SECONDS = 180.0
POLL_SECONDS = 0.1


def require_proc() -> None:
    if not (PROC / "self" / "stat").exists():
        pytest.skip("needs /proc to follow the processes a command starts")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The command name in parentheses may hold spaces; the fields follow the last ')'.
    return stat.rpartition(")")[2].split()


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def alive(pid: int) -> bool:
    """Running or stopped, not gone and not a zombie (exited, waiting to be reaped)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid``: children, grandchildren, ..."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    waiting = [pid]
    while waiting:
        for child in children.get(waiting.pop(), []):
            if child not in found and alive(child):
                found.add(child)
                waiting.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip()


def wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``condition`` until it holds; fail if ``process`` exits first or it never does."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the command exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(POLL_SECONDS)


def wait_until_gone(pids: Sequence[int] | set[int]) -> list[int]:
    """The ``pids`` still alive after a grace period (reparented children take a moment to be
    reaped by init)."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(POLL_SECONDS)
    return [pid for pid in pids if alive(pid)]


def streamrec_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh user: no STREAMREC_* variable but the data directory."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("STREAMREC_")
    }
    environment["STREAMREC_DATA_DIR"] = str(data_dir)
    environment["COLUMNS"] = "120"
    environment.update(extra)
    return environment


def start_streamrec(
    arguments: Sequence[str], cwd: Path, environment: Mapping[str, str], output: IO[bytes]
) -> subprocess.Popen[bytes]:
    """``streamrec ARGUMENTS`` as a child process writing to ``output`` (a file: a pipe
    nobody reads could fill up and block it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamrec.cli.main", *arguments],
        cwd=cwd,
        env=dict(environment),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
