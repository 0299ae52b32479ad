"""``streamrec trainer``: the scheduled trainer, in this process.

Without options it runs until SIGTERM or Ctrl-C: runs on settings.trainer.schedule, and at
once on a ``train`` command from the control topic (``streamrec train now``, or drift). A run
that is going when the signal comes is finished first. ``--once`` runs a single run now
(resuming an interrupted rebuild first, if any) and exits: for cron-driven deployments and
scripts. docs/training.md explains what a run does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from streamrec.observability import ObservabilityServer
    from streamrec.services.training_run import RunStage
    from trainer.process import TrainerProcess


@click.command(name="trainer")
@click.option("--once", is_flag=True, help="Run one run now and exit (no schedule).")
@click.option(
    "--force",
    is_flag=True,
    help="With --once: train even with fewer new interactions than trainer.min_new_events.",
)
@click.option(
    "--no-control",
    is_flag=True,
    help="Do not read the control topic (no broker needed); the schedule alone starts runs.",
)
@click.option(
    "--pause-at",
    default=None,
    hidden=True,
    metavar="STAGE[:N]",
    help="Testing only: stop dead at STAGE of a run (chunk N while rebuilding), so that a "
    "test can kill the process there with SIGKILL.",
)
@click.pass_obj
def command(
    settings: Settings, once: bool, force: bool, no_control: bool, pause_at: str | None
) -> None:
    """Fine-tune, judge, promote and rebuild model versions, on schedule and on demand."""
    import torch

    from streamrec.observability import ObservabilityServer, configure_logging
    from streamrec.services.training_run import RunHooks, RunRequest, TrainingRunService
    from streamrec.storage import check_connection, create_database_engine
    from streamrec.storage.records import TrainingTrigger
    from trainer.process import TrainerProcess

    # The training threads share the machine with consumers and the database.
    torch.set_num_threads(1)
    configure_logging(settings.observability)
    engine = create_database_engine(settings.effective_database_url)
    try:
        check_connection(engine)
        hooks = RunHooks(on_stage=_pause_at(pause_at) if pause_at else None)
        service = TrainingRunService(settings, engine, hooks=hooks)
        if once:
            result = service.run(
                RunRequest(TrainingTrigger.OPERATOR, "streamrec trainer --once", force=force)
            )
            click.echo(f"run {result.run_id}: {result.outcome.value}: {result.reason}")
            if result.outcome.value == "failed":
                raise SystemExit(1)
            return
        process = TrainerProcess(
            settings, engine, service=service, use_control_topic=not no_control
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
        _run(process, server)
    finally:
        engine.dispose()


def _run(process: TrainerProcess, server: ObservabilityServer | None) -> None:
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


def _pause_at(specification: str) -> Callable[[RunStage, int], None]:
    from streamrec.services.training_run import RunStage

    stage_name, _, number_text = specification.partition(":")
    try:
        stage, number = RunStage(stage_name), int(number_text or 0)
    except ValueError:
        stages = ", ".join(stage.value for stage in RunStage)
        raise click.BadParameter(f"expected STAGE[:N] with STAGE one of {stages}") from None

    def pause_if_due(current: RunStage, current_number: int) -> None:
        if (current, current_number) == (stage, number):
            click.echo(f"paused at {stage.value}:{number}", err=True)
            threading.Event().wait()

    return pause_if_due
