"""``streamrec broker start|stop|status``: the local Kafka-compatible broker of the data directory.

``status`` exits 0 when the broker runs and 1 when it does not, so scripts can test it.
"""

from __future__ import annotations

import click

from streamrec.broker import BrokerAlreadyRunningError, LocalBroker
from streamrec.config import Settings

STOPPED_EXIT_STATUS = 1


@click.group(name="broker")
def command() -> None:
    """Run a local Kafka-compatible broker (memory only) for development and demos."""


@command.command(name="start")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port on 127.0.0.1 to listen on (default: a free one).",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds to wait for the broker to answer.",
)
@click.pass_obj
def start(settings: Settings, port: int | None, timeout_seconds: float) -> None:
    """Start the broker in the background and record it in the data directory."""
    broker = LocalBroker(settings.data_dir, startup_timeout_seconds=timeout_seconds)
    try:
        record = broker.start(port)
    except BrokerAlreadyRunningError as running:
        click.echo(f"{running}; nothing to do")
        return
    click.echo(f"local broker running at {record.address} (pid {record.pid})")
    click.echo(f"log: {record.log_file}")
    click.echo("it keeps every message in memory; `streamrec broker stop` frees it")


@command.command(name="stop")
@click.pass_obj
def stop(settings: Settings) -> None:
    """Stop the broker (SIGTERM, then SIGKILL) and remove its record. Its messages are lost."""
    if LocalBroker(settings.data_dir).stop():
        click.echo("local broker stopped")
    else:
        click.echo("no local broker was running")


@command.command(name="status")
@click.pass_obj
def status(settings: Settings) -> None:
    """Say whether the broker runs and where; exit status 1 if it does not."""
    broker_status = LocalBroker(settings.data_dir).status()
    click.echo(f"local broker: {broker_status.describe()}")
    if not broker_status.running:
        raise SystemExit(STOPPED_EXIT_STATUS)
