"""The trainer process's options, shared by ``streamrec trainer`` and ``python -m trainer``.

Only click is imported here, so that ``streamrec --help`` stays quick.
"""

from __future__ import annotations

import click


def trainer_options(function: click.decorators.FC) -> click.decorators.FC:
    """``--once``, ``--force`` and ``--no-control``."""
    options = [
        click.option("--once", is_flag=True, help="Run one run now and exit (no schedule)."),
        click.option(
            "--force",
            is_flag=True,
            help="With --once: train even with fewer new interactions than trainer.min_new_events.",
        ),
        click.option(
            "--no-control",
            is_flag=True,
            help="Do not read the control topic (no broker needed); the schedule alone starts "
            "runs.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function
