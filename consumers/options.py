"""The consumer process's options, shared by ``streamrec consume`` and ``python -m consumers``.

Only click is imported here, so that ``streamrec --help`` stays quick.
"""

from __future__ import annotations

import click


def consumer_options(function: click.decorators.FC) -> click.decorators.FC:
    """``--max-events``, ``--idle-exit`` and ``--reset-offsets``."""
    options = [
        click.option(
            "--max-events",
            type=click.IntRange(min=1),
            default=None,
            help="Stop after processing this many input records.",
        ),
        click.option(
            "--idle-exit",
            type=click.FloatRange(min=0.0),
            default=None,
            metavar="SECONDS",
            help="Stop when no record arrived for this long (after joining the group).",
        ),
        click.option(
            "--reset-offsets",
            "reset_offsets",
            type=click.Choice(["earliest", "latest"]),
            default=None,
            help="Resume partitions whose stored offset lies outside the log at the log's "
            "start (earliest) or end (latest); other partitions are not moved. Without it "
            "such a partition stops the consumer.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function
