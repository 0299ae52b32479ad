"""``python -m trainer``: the trainer process's entry point, without the ``streamrec`` CLI.

It reads the settings as every streamrec command does (``STREAMREC_*`` variables, then
``--config FILE`` or ``STREAMREC_CONFIG_FILE``, then the defaults), checks that the database
is migrated, and runs ``trainer.wiring``, the same process as ``streamrec trainer``, with the
same options: on the schedule and the control topic until SIGTERM or SIGINT, or one run with
``--once``. An error the operator can fix ends as one line on stderr (secrets masked) and
exit status 2.

>>> from click.testing import CliRunner
>>> result = CliRunner().invoke(command, ["--help"])
>>> result.exit_code, "--no-control" in result.output
(0, True)
"""

from __future__ import annotations

import sys

import click

from streamrec.config import ConfigurationError, load_settings
from streamrec.errors import UserFacingError
from streamrec.redaction import mask_secrets

PROGRAM = "python -m trainer"
# Exit status of an error the operator can fix (as the streamrec command's), and of a failed
# run with --once.
USER_ERROR_EXIT_STATUS = 2
FAILED_RUN_EXIT_STATUS = 1


@click.command(name=PROGRAM)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $STREAMREC_CONFIG_FILE).",
)
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
def command(config_file: str | None, once: bool, force: bool, no_control: bool) -> None:
    """Fine-tune, judge, promote and rebuild model versions, on schedule and on demand (as
    `streamrec trainer`)."""
    from streamrec.observability.logs import mask_unconfigured_logging
    from streamrec.storage.migrations import require_migrated_database
    from trainer.wiring import run_trainer_once, run_trainer_until_stopped

    mask_unconfigured_logging()
    settings = load_settings(config_file)
    require_migrated_database(settings.effective_database_url)
    if once:
        result = run_trainer_once(settings, force=force)
        click.echo(f"run {result.run_id}: {result.outcome.value}: {result.reason}")
        if result.outcome.value == "failed":
            sys.exit(FAILED_RUN_EXIT_STATUS)
        return
    run_trainer_until_stopped(settings, use_control_topic=not no_control)


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
