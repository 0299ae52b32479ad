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

from streamrec.config import load_settings
from streamrec.entry_points import config_option, run_standalone
from trainer.options import trainer_options

PROGRAM = "python -m trainer"
# Exit status of a failed run with --once.
FAILED_RUN_EXIT_STATUS = 1


@click.command(name=PROGRAM)
@config_option
@trainer_options
def command(config_file: str | None, once: bool, force: bool, no_control: bool) -> None:
    """Fine-tune, judge, promote and rebuild model versions, on schedule and on demand (as
    `streamrec trainer`)."""
    from streamrec.observability.logs import mask_unconfigured_logging
    from streamrec.storage.migrations import require_migrated_database
    from trainer.wiring import run_trainer_once, run_trainer_until_stopped

    mask_unconfigured_logging()
    settings = load_settings(config_file)
    require_migrated_database(settings.effective_database_url, settings.timeouts)
    if once:
        result = run_trainer_once(settings, force=force)
        click.echo(f"run {result.run_id}: {result.outcome.value}: {result.reason}")
        if result.outcome.value == "failed":
            sys.exit(FAILED_RUN_EXIT_STATUS)
        return
    run_trainer_until_stopped(settings, use_control_topic=not no_control)


def main(argv: list[str] | None = None) -> None:
    """Run the command with ``argv`` (default: the process's arguments)."""
    run_standalone(command, PROGRAM, argv)


if __name__ == "__main__":
    main()
