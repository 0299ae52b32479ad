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

import sys

import click

from streamrec.config import ConfigurationError, load_settings
from streamrec.errors import UserFacingError
from streamrec.redaction import mask_secrets

PROGRAM = "python -m consumers"
# Exit status of an error the operator can fix (as the streamrec command's).
USER_ERROR_EXIT_STATUS = 2


@click.command(name=PROGRAM)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $STREAMREC_CONFIG_FILE).",
)
@click.option(
    "--max-events",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after processing this many input records.",
)
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0.0),
    default=None,
    metavar="SECONDS",
    help="Stop when no record arrived for this long (after joining the group).",
)
@click.option(
    "--reset-offsets",
    "reset_offsets",
    type=click.Choice(["earliest", "latest"]),
    default=None,
    help="Resume partitions whose stored offset lies outside the log at the log's start "
    "(earliest) or end (latest); other partitions are not moved. Without it such a "
    "partition stops the consumer.",
)
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
    require_migrated_database(settings.effective_database_url)
    summary = run_consumer_process(
        settings,
        max_records=max_events,
        idle_exit_seconds=idle_exit,
        offset_reset=None if reset_offsets is None else OffsetResetChoice(reset_offsets),
    )
    click.echo(summary.describe())


def main(argv: list[str] | None = None) -> None:
    """Run the command with ``argv`` (default: the process's arguments); exit with its
    status when it fails."""
    try:
        command.main(args=argv, prog_name=PROGRAM, standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (ConfigurationError, UserFacingError) as error:
        lines = (line.strip() for line in str(error).splitlines())
        message = mask_secrets(" ".join(line for line in lines if line))
        click.echo(f"{PROGRAM}: {message}", err=True)
        sys.exit(USER_ERROR_EXIT_STATUS)


if __name__ == "__main__":
    main()
