"""The dashboard's actions, run one at a time in a thread of the server so that a page never
waits for them: a roll back may rebuild every user's state first. The page shows the running
action's progress and how the last ones ended.

>>> runner = ActionRunner(clock=lambda: 5.0)
>>> runner.start("say hello", lambda report: "hello")
True
>>> runner.wait()
>>> [(action.name, action.outcome, action.message) for action in runner.recent()]
[('say hello', 'done', 'hello')]
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from streamrec.errors import UserFacingError

logger = logging.getLogger(__name__)

# How many finished actions the dashboard lists.
KEPT_ACTIONS = 10
RUNNING = "running"
DONE = "done"
FAILED = "failed"

# An action's work: it may report progress in one line, and returns how it ended.
Work = Callable[[Callable[[str], None]], str]


@dataclass(slots=True)
class Action:
    name: str
    started_at: float
    outcome: str = RUNNING
    message: str = ""
    finished_at: float | None = None


class ActionRunner:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._actions: deque[Action] = deque(maxlen=KEPT_ACTIONS)
        self._thread: threading.Thread | None = None

    def start(self, name: str, work: Work) -> bool:
        """Start ``work`` in a thread of its own; False (and nothing started) while another
        action runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            action = Action(name, self._clock())
            self._actions.appendleft(action)
            self._thread = threading.Thread(
                target=self._run, args=(action, work), name=f"action: {name}", daemon=True
            )
            self._thread.start()
            return True

    def running(self) -> Action | None:
        with self._lock:
            action = self._actions[0] if self._actions else None
            return action if action is not None and action.outcome == RUNNING else None

    def recent(self) -> list[Action]:
        """The running action, if any, and the last finished ones, newest first."""
        with self._lock:
            return list(self._actions)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running action to end (tests; shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, action: Action, work: Work) -> None:
        def report(progress: str) -> None:
            action.message = progress

        try:
            message, outcome = work(report), DONE
        except UserFacingError as error:
            message, outcome = str(error), FAILED
        except Exception as error:
            # The server goes on; the operator sees the failure and the log has the trace.
            logger.exception("dashboard action %r failed", action.name)
            message, outcome = f"{type(error).__name__}: {error}", FAILED
        with self._lock:
            action.message, action.outcome, action.finished_at = message, outcome, self._clock()
