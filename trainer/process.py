"""The long-running trainer process: a schedule, operator and drift triggers from the control
topic, and metrics and health, around ``TrainingRunService``.

- Scheduled runs come from an APScheduler 3 BackgroundScheduler (interval or cron, from
  settings.trainer.schedule) with ``max_instances=1`` and ``coalesce``: a run that is still
  going when the next is due makes that one wait for the next slot, and runs missed while the
  process was busy or asleep collapse into one.
- Commands from the control topic (``streamrec train now``, drift) are queued as one-off jobs
  on the same single-worker executor, so runs of one process never overlap; the database run
  lock keeps other processes out too.
- Drift commands are rate-limited: none is accepted within
  settings.trainer.drift_min_interval_seconds of the start of the last drift run.
- On start, a version left BUILDING by a killed trainer is resumed at once.

The main thread polls the control topic (or just waits, without a broker) and beats the
heartbeat; ``request_stop`` ends the loop, and ``stop`` waits for a running run to finish.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.observability.health import Heartbeat, Readiness, ReadinessCheck
from streamrec.observability.metrics import TrainerMetrics
from streamrec.retrying import Backoff, StopRequested, retrying
from streamrec.services.training_run import (
    RunHooks,
    RunRequest,
    RunResult,
    TrainingRunService,
    precision_key,
)
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.trainer import RebuildProgress
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire.control import ModelActivated, RunFinished, RunStarted, TrainCommand
from trainer.control import ControlListener, ControlPublisher
from trainer.metrics import RunMetrics
from trainer.schedule import schedule_trigger

logger = logging.getLogger(__name__)

SCHEDULED_JOB_ID = "scheduled-training"
TRAINING_EXECUTOR = "training"
# A scheduled run that could not start within this long of its time is skipped (and, with
# coalesce, the next one covers it).
MISFIRE_GRACE_SECONDS = 3_600
IDLE_WAIT_SECONDS = 0.5
RECENT_RESULTS = 100


class TrainerProcess:
    """Wires the run service to a clock, the control topic and the metrics.

    ``use_control_topic=False`` runs on the schedule alone (no broker needed); ``schedule``
    overrides settings.trainer.schedule (None: the settings' schedule).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        service: TrainingRunService | None = None,
        use_control_topic: bool = True,
        metrics: TrainerMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self.metrics = RunMetrics(metrics or TrainerMetrics(clock=clock))
        self.heartbeat = Heartbeat(timeout_seconds=settings.timeouts.liveness_seconds)
        self._service = service or TrainingRunService(settings, engine, clock=clock)
        self._use_control_topic = use_control_topic
        self._publisher: ControlPublisher | None = None
        self._listener: ControlListener | None = None
        self._stop = threading.Event()
        self._control_topic_retrying = retrying(
            lambda error: isinstance(error, Exception),
            # Without a broker the trainer still runs on schedule, and tries the control
            # topic again at this period whatever kept it from opening.
            Backoff.constant(settings.timeouts.control_topic_retry_seconds),
            sleep=self._idle,
            stop_requested=self._stop.is_set,
            what="the control topic (running on the schedule meanwhile)",
        )
        self._drift_lock = threading.Lock()
        self._last_drift_accepted_at: float | None = None
        self._scheduler = BackgroundScheduler(
            executors={TRAINING_EXECUTOR: ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._observe(self._service.hooks)
        # The latest results, newest last (for status displays and tests; bounded for months).
        self.recent_results: deque[RunResult] = deque(maxlen=RECENT_RESULTS)

    @property
    def service(self) -> TrainingRunService:
        return self._service

    def readiness(self) -> Readiness:
        """Ready while the scheduler runs and the database answers."""
        from streamrec.storage import check_connection

        def scheduler() -> str | None:
            return None if self._scheduler.running else "the scheduler is not running"

        def database() -> str | None:
            check_connection(self._engine)
            return None

        return Readiness(
            [ReadinessCheck("scheduler", scheduler), ReadinessCheck("database", database)]
        )

    def start(self) -> None:
        """Start the schedule; resume an interrupted rebuild at once if there is one."""
        schedule = self._settings.trainer.schedule
        self._scheduler.add_job(
            self._run_job,
            schedule_trigger(schedule),
            args=[RunRequest(TrainingTrigger.SCHEDULE, f"schedule {schedule}")],
            id=SCHEDULED_JOB_ID,
            executor=TRAINING_EXECUTOR,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
        self._scheduler.start()
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            building = uow.builds.building_version()
        if building is not None:
            logger.info("version %d was left building: resuming its rebuild now", building)
            self.submit(
                RunRequest(TrainingTrigger.SCHEDULE, f"resume the rebuild of version {building}")
            )
        logger.info("trainer started, schedule %s", schedule)

    def submit(self, request: RunRequest) -> None:
        """Queue a run to start as soon as the running one (if any) is over."""
        self._scheduler.add_job(
            self._run_job,
            "date",  # without a run date: now
            args=[request],
            id=f"{request.trigger.value}-{uuid.uuid4().hex[:12]}",
            executor=TRAINING_EXECUTOR,
            misfire_grace_time=None,
        )

    def handle_command(self, command: TrainCommand) -> bool:
        """Queue the run a control command asks for; False if the drift rate limit drops it."""
        trigger = command.trigger.value
        if command.trigger is TrainingTrigger.DRIFT and not self._accept_drift():
            self.metrics.observe_command(trigger, "suppressed")
            logger.info(
                "drift trigger %s suppressed: a drift run started less than %d s ago",
                command.request_id,
                self._settings.trainer.drift_min_interval_seconds,
            )
            return False
        self.metrics.observe_command(trigger, "accepted")
        self.submit(RunRequest(command.trigger, command.reason, command.request_id, command.force))
        return True

    def run_until_stopped(self) -> None:
        """The main loop: poll the control topic (when used) and beat the heartbeat."""
        while not self._stop.is_set():
            self.heartbeat.beat()
            listener = self._control_listener()
            if listener is None:
                self._stop.wait(IDLE_WAIT_SECONDS)
                continue
            try:
                listener.poll_once()
            except Exception:
                logger.warning("control topic poll failed; reconnecting", exc_info=True)
                self._close_listener()

    def request_stop(self) -> None:
        """End ``run_until_stopped`` (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop scheduling, wait for a running run to end, close the Kafka clients."""
        self._stop.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self._close_listener()
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    # Runs -----------------------------------------------------------------------------------

    def _run_job(self, request: RunRequest) -> None:
        self.metrics.run_in_progress.set(1)
        try:
            result = self._service.run(request)
        except Exception:
            # The database is gone or the run could not even be recorded: the next one retries.
            logger.exception("training run (%s) could not run", request.trigger.value)
            return
        finally:
            self.metrics.run_in_progress.set(0)
        self.recent_results.append(result)
        self.metrics.observe_result(result, precision_key(self._settings))
        if request.request_id is not None:
            self._publish(
                RunFinished(
                    request.request_id,
                    result.run_id,
                    result.outcome.value,
                    result.reason,
                    self._clock(),
                )
            )

    def _accept_drift(self) -> bool:
        minimum = self._settings.trainer.drift_min_interval_seconds
        now = self._clock()
        with self._drift_lock:
            with UnitOfWork(self._engine, clock=self._clock) as uow:
                last_run = uow.training_runs.latest(TrainingTrigger.DRIFT)
            starts = [
                moment
                for moment in (
                    self._last_drift_accepted_at,
                    None if last_run is None else last_run.started_at,
                )
                if moment is not None
            ]
            if starts and now - max(starts) < minimum:
                return False
            self._last_drift_accepted_at = now
            return True

    def _observe(self, hooks: RunHooks) -> None:
        """Chain the process's observers in front of hooks the service already has."""
        given_started, given_progress, given_activated = (
            hooks.on_started,
            hooks.on_rebuild_progress,
            hooks.on_activated,
        )

        def on_started(run_id: int, request: RunRequest) -> None:
            if request.request_id is not None:
                self._publish(RunStarted(request.request_id, run_id, self._clock()))
            if given_started is not None:
                given_started(run_id, request)

        def on_rebuild_progress(progress: RebuildProgress) -> None:
            self.metrics.observe_progress(progress)
            if given_progress is not None:
                given_progress(progress)

        def on_activated(version: int, previous: int | None) -> None:
            self.metrics.trainer.set_active_model_version(version)
            self._publish(ModelActivated(version, previous, self._clock()))
            if given_activated is not None:
                given_activated(version, previous)

        hooks.on_started = on_started
        hooks.on_rebuild_progress = on_rebuild_progress
        hooks.on_activated = on_activated

    # The control topic ------------------------------------------------------------------------

    def _publish(self, message: RunStarted | RunFinished | ModelActivated) -> None:
        """Best effort: the database holds the truth; the topic only tells sooner."""
        if not self._use_control_topic:
            return
        try:
            if self._publisher is None:
                self._publisher = ControlPublisher(self._settings)
            self._publisher.publish(message)
        except Exception as error:
            logger.warning(
                "could not publish %s on the control topic: %s", type(message).__name__, error
            )

    def _control_listener(self) -> ControlListener | None:
        """The listener, opened first if need be; None without a control topic or once the
        operator asked to stop."""
        if not self._use_control_topic:
            return None
        if self._listener is None:
            try:
                self._listener = self._control_topic_retrying(
                    ControlListener,
                    self._settings,
                    self.handle_command,
                    clock=self._clock,
                    on_rejected=lambda _: self.metrics.observe_command("unknown", "refused"),
                )
            except StopRequested:
                return None
        return self._listener

    def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, or until asked to stop, beating the heartbeat meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self.heartbeat.beat()
            self._stop.wait(min(IDLE_WAIT_SECONDS, left))

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except Exception:
                logger.debug("closing the control listener failed", exc_info=True)
