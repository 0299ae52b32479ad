"""The trainer process put together: settings in; the database, the run service, the schedule,
the control topic, metrics and health wired; runs made until the process is stopped.

``streamrec trainer`` and ``python -m trainer`` both call these, so the two run the same
process. Each sets one torch thread (training shares the machine with consumers and the
database), configures logging, opens the database and checks it answers, and closes it on
the way out:

- ``run_trainer_once``: one run now (resuming an interrupted rebuild first, if any), for
  cron-driven deployments and scripts;
- ``run_trainer_until_stopped``: ``trainer.process.TrainerProcess`` on the schedule and the
  control topic, serving /metrics, /healthz and /readyz when ``observability.metrics_port``
  is set, until SIGTERM or SIGINT; a run that is going when the signal comes is finished
  first.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from streamrec.config import Settings

if TYPE_CHECKING:
    from streamrec.services.training_run import RunHooks, RunResult


def run_trainer_once(
    settings: Settings, *, force: bool = False, hooks: RunHooks | None = None
) -> RunResult:
    """One operator-triggered run now; ``force`` trains even with fewer new interactions
    than trainer.min_new_events."""
    from streamrec.services.training_run import RunRequest, TrainingRunService
    from streamrec.storage.records import TrainingTrigger

    with _trainer_database(settings) as engine:
        service = TrainingRunService(settings, engine, hooks=hooks)
        return service.run(
            RunRequest(TrainingTrigger.OPERATOR, "streamrec trainer --once", force=force)
        )


def run_trainer_until_stopped(
    settings: Settings, *, use_control_topic: bool = True, hooks: RunHooks | None = None
) -> None:
    """Runs on settings.trainer.schedule, and at once on a ``train`` command from the control
    topic (``use_control_topic=False``: the schedule alone, no broker needed), until SIGTERM
    or SIGINT. From the main thread only (signal handlers)."""
    from streamrec.observability import ObservabilityServer
    from streamrec.services.training_run import TrainingRunService
    from trainer.process import TrainerProcess

    with _trainer_database(settings) as engine:
        service = TrainingRunService(settings, engine, hooks=hooks)
        process = TrainerProcess(
            settings, engine, service=service, use_control_topic=use_control_topic
        )
        port = settings.observability.metrics_port
        server = (
            ObservabilityServer(
                process.metrics.trainer,
                heartbeat=process.heartbeat,
                readiness=process.readiness(),
                port=port,
            )
            if port
            else None
        )

        def stop(signal_number: int, frame: FrameType | None) -> None:
            process.request_stop()

        previous = {name: signal.signal(name, stop) for name in (signal.SIGTERM, signal.SIGINT)}
        try:
            if server is not None:
                server.start()
            process.start()
            process.run_until_stopped()
        finally:
            process.stop()
            if server is not None:
                server.stop()
            for name, handler in previous.items():
                signal.signal(name, handler)


@contextlib.contextmanager
def _trainer_database(settings: Settings) -> Iterator[Engine]:
    """The process's settings applied and its database open and answering, for the block."""
    import torch

    from streamrec.observability import configure_logging
    from streamrec.storage import check_connection, create_database_engine

    # The training threads share the machine with consumers and the database.
    torch.set_num_threads(1)
    configure_logging(settings.observability)
    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        check_connection(engine)
        yield engine
    finally:
        engine.dispose()
