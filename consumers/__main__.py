"""``python -m consumers``: the consumer process's entry point, without the ``streamrec`` CLI.

It reads the settings as every streamrec command does (``STREAMREC_*`` variables, then
``--config FILE`` or ``STREAMREC_CONFIG_FILE``, then the defaults), checks that the database
is migrated, and runs ``consumers.wiring.run_consumer_process``, the same process as
``streamrec consume``, with the same options. An error the operator can fix ends as one line
on stderr (secrets masked) and exit status 2.

>>> from click.testing import CliRunner
>>> result = CliRunner().invoke(command, ["--help"])
>>> result.exit_code, "--reset-offsets [earliest|latest]" in result.output
(0, True)
"""

from __future__ import annotations

import click

from consumers.options import consumer_options
from streamrec.config import load_settings
from streamrec.entry_points import config_option, run_standalone

PROGRAM = "python -m consumers"


@click.command(name=PROGRAM)
@config_option
@consumer_options
def command(
    config_file: str | None,
    max_events: int | None,
    idle_exit: float | None,
    reset_offsets: str | None,
) -> None:
    """Consume interactions and item updates; publish fresh recommendations (as `streamrec
    consume`)."""
    from consumers.wiring import run_consumer_process
    from streamrec.observability.logs import mask_unconfigured_logging
    from streamrec.offsets import OffsetResetChoice
    from streamrec.storage.migrations import require_migrated_database

    mask_unconfigured_logging()
    settings = load_settings(config_file)
    require_migrated_database(settings.effective_database_url, settings.timeouts)
    summary = run_consumer_process(
        settings,
        max_records=max_events,
        idle_exit_seconds=idle_exit,
        offset_reset=None if reset_offsets is None else OffsetResetChoice(reset_offsets),
    )
    click.echo(summary.describe())


def main(argv: list[str] | None = None) -> None:
    """Run the command with ``argv`` (default: the process's arguments)."""
    run_standalone(command, PROGRAM, argv)


if __name__ == "__main__":
    main()
