"""``streamrec train now``: ask the running trainer for a run at once, over the control topic.

The request is a ``train`` message (docs/training.md); ``--wait`` then follows the trainer's
answers on the same topic until the run ends, and prints how it ended. Exit status: 0 when
the run promoted, rejected or skipped (each a normal outcome, with its reason), 1 when it
failed, 2 when no answer came in time.
"""

from __future__ import annotations

import time

import click

from streamrec.config import Settings

DEFAULT_TIMEOUT_SECONDS = 3_600.0


@click.command(name="now")
@click.option("--wait", is_flag=True, help="Wait for the run to end and print its outcome.")
@click.option(
    "--force", is_flag=True, help="Train even with fewer new interactions than the minimum."
)
@click.option("--reason", default=None, help="A note recorded with the run.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="With --wait: how long to wait for the run to end.",
)
@click.pass_obj
def command(
    settings: Settings, wait: bool, force: bool, reason: str | None, timeout: float
) -> None:
    """Start a training run now (the trainer must be running)."""
    from streamrec.errors import UserFacingError
    from streamrec.kafka import ensure_topics
    from streamrec.services.operator_actions import operator_train_command
    from streamrec.wire.control import RunStarted
    from trainer.control import ControlPublisher, control_replies

    ensure_topics(settings, [settings.topics.control])
    request = operator_train_command(reason, force, time.time())
    publisher = ControlPublisher(settings)
    try:
        if not wait:
            publisher.publish(request)
            click.echo(f"train request {request.request_id} sent")
            return
        with control_replies(settings) as replies:
            publisher.publish(request)
            click.echo(f"train request {request.request_id} sent; waiting for the trainer")

            def started(message: RunStarted) -> None:
                click.echo(f"run {message.run_id} started")

            finished = replies.wait_for(request.request_id, timeout, on_started=started)
    finally:
        publisher.close()
    if finished is None:
        raise UserFacingError(
            f"no answer to train request {request.request_id} within {timeout:g} s: is "
            "`streamrec trainer` running and reading the control topic?"
        )
    click.echo(f"run {finished.run_id}: {finished.outcome}: {finished.reason}")
    if finished.outcome == "failed":
        raise SystemExit(1)
