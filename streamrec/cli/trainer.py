"""``streamrec trainer``: the scheduled trainer, in this process.

Without options it runs until SIGTERM or Ctrl-C: runs on settings.trainer.schedule, and at
once on a ``train`` command from the control topic (``streamrec train now``, or drift). A run
that is going when the signal comes is finished first. ``--once`` runs a single run now
(resuming an interrupted rebuild first, if any) and exits: for cron-driven deployments and
scripts. docs/training.md explains what a run does. The process itself is put together in
``trainer.wiring``, which ``python -m trainer`` runs too.
"""

from __future__ import annotations

import click

from streamrec.config import Settings
from trainer.options import trainer_options


@click.command(name="trainer")
@trainer_options
@click.pass_obj
def command(settings: Settings, once: bool, force: bool, no_control: bool) -> None:
    """Fine-tune, judge, promote and rebuild model versions, on schedule and on demand."""
    from trainer.wiring import run_trainer_once, run_trainer_until_stopped

    if once:
        result = run_trainer_once(settings, force=force)
        click.echo(f"run {result.run_id}: {result.outcome.value}: {result.reason}")
        if result.outcome.value == "failed":
            raise SystemExit(1)
        return
    run_trainer_until_stopped(settings, use_control_topic=not no_control)
