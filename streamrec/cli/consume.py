"""``streamrec consume``: run one consumer of the pipeline in this process.

Start as many as the interactions topic has partitions, on any machines: they form one
consumer group and split the partitions. ``--max-events`` and ``--idle-exit`` make a run
finite (tests, the demo, benchmarks); without them it runs until SIGTERM or Ctrl-C, which
finish the current batch, commit and leave the group.

A consumer assigned a partition whose stored offset lies outside the broker's log (a
recreated topic, retention that deleted unread records) stops with one line and a non-zero
status; ``--reset-offsets earliest|latest`` is the operator's choice of where to resume such
partitions, recorded in the log and the database (docs/operations.md, Runbook).

The process itself is put together in ``consumers.wiring``, which ``python -m consumers``
runs too.
"""

from __future__ import annotations

import click

from consumers.options import consumer_options
from streamrec.config import Settings


@click.command(name="consume")
@consumer_options
@click.pass_obj
def command(
    settings: Settings,
    max_events: int | None,
    idle_exit: float | None,
    reset_offsets: str | None,
) -> None:
    """Consume interactions and item updates; publish fresh recommendations."""
    from consumers.wiring import run_consumer_process
    from streamrec.offsets import OffsetResetChoice

    summary = run_consumer_process(
        settings,
        max_records=max_events,
        idle_exit_seconds=idle_exit,
        offset_reset=None if reset_offsets is None else OffsetResetChoice(reset_offsets),
    )
    click.echo(summary.describe())
