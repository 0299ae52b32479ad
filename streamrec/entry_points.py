"""Running a process's click command on its own (``python -m consumers``, ``python -m
trainer``), outside the ``streamrec`` group: an error the operator can fix ends as one line on
stderr, secrets masked, with exit status 2, as ``streamrec`` commands end.

>>> import click
>>> @click.command()
... def hello() -> None:
...     raise UserFacingError("no database at x.db: run `streamrec db upgrade`")
>>> try:
...     run_standalone(hello, "python -m hello", [])
... except SystemExit as stop:
...     stop.code
2
"""

from __future__ import annotations

import sys

import click

from streamrec.config import ConfigurationError
from streamrec.errors import UserFacingError
from streamrec.redaction import mask_secrets

# Exit status of an error the operator can fix (as the streamrec command's).
USER_ERROR_EXIT_STATUS = 2


def config_option(function: click.decorators.FC) -> click.decorators.FC:
    """``--config FILE``: the settings file, as every streamrec command takes it."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML settings file (default: $STREAMREC_CONFIG_FILE).",
    )(function)


def run_standalone(command: click.Command, program: str, argv: list[str] | None = None) -> None:
    """Run ``command`` with ``argv`` (default: the process's arguments) as ``program``; exit
    with its status when it fails."""
    try:
        command.main(args=argv, prog_name=program, standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (ConfigurationError, UserFacingError) as error:
        lines = (line.strip() for line in str(error).splitlines())
        message = mask_secrets(" ".join(line for line in lines if line))
        click.echo(f"{program}: {message}", err=True)
        sys.exit(USER_ERROR_EXIT_STATUS)
