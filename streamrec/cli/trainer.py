"""``streamrec trainer``: the scheduled trainer, in this process.

Without options it runs until SIGTERM or Ctrl-C: runs on settings.trainer.schedule, and at
once on a ``train`` command from the control topic (``streamrec train now``, or drift). A run
that is going when the signal comes is finished first. ``--once`` runs a single run now
(resuming an interrupted rebuild first, if any) and exits: for cron-driven deployments and
scripts. docs/training.md explains what a run does. The process itself is put together in
``trainer.wiring``, which ``python -m trainer`` runs too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from streamrec.config import Settings
from trainer.options import trainer_options

if TYPE_CHECKING:
    from streamrec.services.training_run import RunStage


@click.command(name="trainer")
@trainer_options
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
    from streamrec.services.training_run import RunHooks
    from trainer.wiring import run_trainer_once, run_trainer_until_stopped

    hooks = RunHooks(on_stage=_pause_at(pause_at) if pause_at else None)
    if once:
        result = run_trainer_once(settings, force=force, hooks=hooks)
        click.echo(f"run {result.run_id}: {result.outcome.value}: {result.reason}")
        if result.outcome.value == "failed":
            raise SystemExit(1)
        return
    run_trainer_until_stopped(settings, use_control_topic=not no_control, hooks=hooks)


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
