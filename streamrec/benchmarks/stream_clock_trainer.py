"""The scheduled trainer during a replay, on the stream's clock instead of the wall clock.

In production ``python -m trainer`` fine-tunes the active version on a schedule and
promotes the candidate (rebuild, then one atomic flip); the consumers serve the new version
from their next batch. A replay at full speed compresses months of events into minutes, so
a wall-clock schedule would hardly ever fire. ``StreamClockTrainer`` runs the same run
(``streamrec.services.training_run.TrainingRunService``: sample, fine-tune, promotion guard,
rebuild, activate) once every ``every_events`` applied events or ``every_hours`` of event
time, whichever comes first.

It is a consumer hook (``on_batch``, after a batch is committed, in the consumer's thread,
after a ``ConsumerBatchLog`` counted the batch): the consumer waits while the run trains and
switches the version, and applies its next batch under whatever version is then active.
On the stream's clock the run therefore takes no time. That keeps a replay reproducible: the
version switches at the same batch boundary in every run, and each run is seeded by its run
number (``TrainingRunService``). In production the consumer goes on meanwhile, applying
events to the old version and to the one being rebuilt.

>>> schedule = StreamSchedule(every_events=1_000, every_hours=24)
>>> schedule.due(applied_events=999, event_time=3_600.0)  # the clock starts at the first call
False
>>> schedule.due(applied_events=1_000, event_time=7_200.0)
True
>>> schedule.started(applied_events=1_000, event_time=7_200.0)
>>> schedule.due(applied_events=1_500, event_time=7_200.0 + 24 * 3_600)
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from streamrec.benchmarks.consumer_batches import ConsumerBatchLog
from streamrec.config import Settings
from streamrec.services.batch import SourceRecord

logger = logging.getLogger(__name__)


class StreamSchedule:
    """When a run is due: ``every_events`` applied events or ``every_hours`` of event time
    since the last run started (or since the first batch), whichever comes first; None
    switches that part off."""

    def __init__(self, every_events: int | None = None, every_hours: float | None = None) -> None:
        if every_events is not None and every_events < 1:
            raise ValueError(f"every_events must be at least 1, got {every_events}")
        if every_hours is not None and every_hours <= 0:
            raise ValueError(f"every_hours must be positive, got {every_hours}")
        self.every_events = every_events
        self.every_hours = every_hours
        self._events_at_start = 0
        self._time_at_start: float | None = None

    def due(self, applied_events: int, event_time: float | None) -> bool:
        if self._time_at_start is None:
            self._time_at_start = event_time
        if (
            self.every_events is not None
            and applied_events - self._events_at_start >= self.every_events
        ):
            return True
        return (
            self.every_hours is not None
            and event_time is not None
            and self._time_at_start is not None
            and event_time - self._time_at_start >= self.every_hours * 3_600
        )

    def started(self, applied_events: int, event_time: float | None) -> None:
        """A run started now: the next is counted from here."""
        self._events_at_start = applied_events
        self._time_at_start = event_time

    def describe(self) -> str:
        """How the schedule is named in reports.

        >>> StreamSchedule(10_000).describe(), StreamSchedule(None, 24.0).describe()
        ('every 10,000 events', 'every 24 hours of event time')
        """
        parts = []
        if self.every_events is not None:
            parts.append(f"every {self.every_events:,} events")
        if self.every_hours is not None:
            parts.append(f"every {self.every_hours:g} hours of event time")
        return " or ".join(parts) or "never"


@dataclass(frozen=True, slots=True)
class ReplayRun:
    """One trainer run of the replay: when it started on the stream's clock, what it did
    and the version active after it."""

    applied_events: int
    event_time: float | None
    outcome: str
    reason: str
    candidate_version: int | None
    active_version: int | None
    seconds: float


class StreamClockTrainer:
    """Runs the trainer on ``schedule`` as a consumer hook (module text); ``log`` must
    record each batch before ``on_batch`` is called for it."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        log: ConsumerBatchLog,
        schedule: StreamSchedule,
        *,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        from streamrec.services.training_run import TrainingRunService

        self._engine = engine
        self._log = log
        self.schedule = schedule
        self._service = TrainingRunService(settings, engine)
        self._announce = announce
        self._stopping = threading.Event()
        self.runs: list[ReplayRun] = []

    def on_batch(self, result: Any, timing: Any, records: Sequence[SourceRecord]) -> None:
        """The consumer loop's hook: run the trainer now if the schedule says so."""
        applied, event_time = self._log.applied_events, self._log.latest_event_time
        if self._stopping.is_set() or not self.schedule.due(applied, event_time):
            return
        self.schedule.started(applied, event_time)
        self.runs.append(self.run_now(applied, event_time))

    def run_now(self, applied_events: int, event_time: float | None) -> ReplayRun:
        """One scheduled run, recorded; the version active after it is read back."""
        from streamrec.services.training_run import RunRequest
        from streamrec.storage import UnitOfWork
        from streamrec.storage.records import TrainingTrigger

        started = time.perf_counter()
        result = self._service.run(
            RunRequest(
                TrainingTrigger.SCHEDULE,
                f"replay schedule {self.schedule.describe()}: after {applied_events:,} events",
            )
        )
        with UnitOfWork(self._engine) as uow:
            active = uow.models.active_version()
        run = ReplayRun(
            applied_events,
            event_time,
            result.outcome.value,
            result.reason,
            result.candidate_version,
            active,
            time.perf_counter() - started,
        )
        if self._announce is not None:
            self._announce(
                f"trainer run after {applied_events:,} events: {run.outcome} "
                f"(active version {active})"
            )
        return run

    def stop(self) -> None:
        """Start no more runs (a run under way is finished by its own code)."""
        self._stopping.set()

    def switches(self) -> int:
        """How many runs switched the active version."""
        return sum(run.outcome == "promoted" for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule.describe(),
            "runs": [asdict(run) for run in self.runs],
            "versions_switched": self.switches(),
        }


__all__ = ["ReplayRun", "StreamClockTrainer", "StreamSchedule"]
