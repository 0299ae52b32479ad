"""Entry point of the ``streamrec`` console script.

Each capability lives in its own module under ``streamrec.cli`` and exposes a click command
or group named ``command``; this module collects them and gives them three things in one
place:

- errors a user can fix (bad settings, a missing or unmigrated database, a database or broker
  that does not answer, a file that cannot be read or written, a wrong argument) end as one
  line on stderr, ``streamrec: ...`` with every secret masked, and exit status 2, never a
  traceback;
- ``--config FILE`` is accepted before or after the subcommand:
  ``streamrec eval --dataset X --config FILE`` is ``streamrec --config FILE eval --dataset X``;
- the commands that use the stored state check first that the database exists and is
  migrated (``COMMANDS_NEEDING_THE_SCHEMA``), so a read-only one never creates a SQLite file.

>>> from click.testing import CliRunner
>>> result = CliRunner().invoke(cli, ["recommend", ""])
>>> result.exit_code
2
>>> print(result.output, end="")  # doctest: +NORMALIZE_WHITESPACE
streamrec: Invalid value for 'USER_ID': user id: must not be empty
(see `streamrec recommend --help`)
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from click.exceptions import NoArgsIsHelpError

from streamrec.cli.stopping import StopRequested
from streamrec.config import CONFIG_FILE_VARIABLE, ConfigurationError, Settings, load_settings
from streamrec.errors import UserFacingError
from streamrec.redaction import mask_secrets

# Exit status of an error the operator can fix, and of an interrupted command.
USER_ERROR_EXIT_STATUS = 2
INTERRUPTED_EXIT_STATUS = 130

# Module names under streamrec.cli, each defining `command`.
COMMAND_MODULES = [
    "config",
    "broker",
    "db",
    "consume",
    "replay",
    "recommend",
    "status",
    "eval",
    "trainer",
    "models",
    "bench",
    "demo",
    "train",
    "serve",
]


# The commands (space-separated paths) that read or write the stored state. Each checks,
# before it opens the database, that it exists and is migrated: a wrong database ends in one
# line that says what to run, and a read-only command never creates an empty SQLite file.
COMMANDS_NEEDING_THE_SCHEMA = frozenset(
    {
        "consume",
        "models list",
        "models promote",
        "models rollback",
        "models runs",
        "models show",
        "recommend",
        "serve",
        "status",
        "train",  # `streamrec train --dataset NAME`, with no subcommand
        "train dataset",
        "trainer",
    }
)
CONFIG_OPTION_HELP = "TOML settings file (default: $STREAMREC_CONFIG_FILE)."
# Where the click context keeps the settings file in use (``ctx.meta`` is shared by a command
# and its subcommands): result files are named after it.
CONFIG_FILE_META_KEY = "streamrec.config_file"


class OneLineError(click.ClickException):
    """An error shown as one line, ``streamrec: <message>``, secrets masked."""

    def __init__(self, message: str, exit_code: int = USER_ERROR_EXIT_STATUS) -> None:
        lines = (line.strip() for line in message.splitlines())
        super().__init__(mask_secrets(" ".join(line for line in lines if line)))
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"streamrec: {self.format_message()}", file=file, err=True)


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it runs, so `streamrec config show` stays fast
    and does not import torch; turns the errors an operator can fix into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name.replace("_", "-") for name in COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = cmd_name.replace("-", "_")
        if module_name not in COMMAND_MODULES:
            return None
        module = importlib.import_module(f"streamrec.cli.{module_name}")
        return _with_shared_behaviour(module.command, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise OneLineError(_usage_line(error)) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise OneLineError(_usage_line(error)) from None
        except OneLineError:
            raise
        except click.ClickException as error:
            # A command's own refusal ("no active model version ..."): the same one line.
            raise OneLineError(error.format_message()) from None
        except (ConfigurationError, UserFacingError) as error:
            raise OneLineError(str(error)) from None
        except OSError as error:
            # A file or directory the operator named or must create: which one, and why.
            where = f": {error.filename}" if error.filename else ""
            raise OneLineError(f"{error.strerror or error}{where}") from None
        except StopRequested as stop:
            # What the command started is stopped by now: the way out ran.
            raise OneLineError(str(stop), exit_code=stop.exit_status) from None
        except (click.Abort, KeyboardInterrupt):
            raise OneLineError("aborted", exit_code=INTERRUPTED_EXIT_STATUS) from None


def _usage_line(error: click.UsageError) -> str:
    command_path = error.ctx.command_path if error.ctx is not None else "streamrec"
    return f"{error.format_message()} (see `{command_path} --help`)"


def _with_shared_behaviour(command: click.Command, path: str) -> click.Command:
    """``command`` and its subcommands, each given the ``--config`` option and, when its path
    is in COMMANDS_NEEDING_THE_SCHEMA, the database check. Idempotent: commands are module
    objects, loaded once and reused."""
    if not any(parameter.name == "config_file" for parameter in command.params):
        command.params.insert(0, _config_option())
    if path in COMMANDS_NEEDING_THE_SCHEMA and command.callback is not None:
        command.callback = _checking_the_schema_first(command.callback)
    if isinstance(command, click.Group):
        for name, subcommand in command.commands.items():
            _with_shared_behaviour(subcommand, f"{path} {name}")
        if not getattr(command, "shares_behaviour_lazily", False):
            _sharing_behaviour_lazily(command, path)
    return command


def _sharing_behaviour_lazily(group: click.Group, path: str) -> None:
    """Give the subcommands a group loads only when asked for (``streamrec bench``'s) the
    shared behaviour too, as they are loaded."""
    load = group.get_command

    def get_command(ctx: click.Context, name: str) -> click.Command | None:
        subcommand = load(ctx, name)
        return None if subcommand is None else _with_shared_behaviour(subcommand, f"{path} {name}")

    group.get_command = get_command  # type: ignore[method-assign]
    group.shares_behaviour_lazily = True  # type: ignore[attr-defined]


def _config_option() -> click.Option:
    """``--config FILE`` after the subcommand: the settings are loaded again with FILE, before
    any other option of the subcommand is read."""

    def reload_settings(ctx: click.Context, _: click.Parameter, config_file: str | None) -> None:
        if config_file is not None and not ctx.resilient_parsing:
            ctx.obj = load_settings(config_file)
            ctx.meta[CONFIG_FILE_META_KEY] = config_file

    return click.Option(
        ["--config", "config_file"],
        type=click.Path(dir_okay=False),
        default=None,
        is_eager=True,
        expose_value=False,
        callback=reload_settings,
        help=CONFIG_OPTION_HELP,
    )


def _checking_the_schema_first(callback: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(callback, "checks_the_schema_first", False):
        return callback

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        # A group's own callback also runs before its subcommands, which check for themselves.
        if ctx.invoked_subcommand is None:
            from streamrec.storage.migrations import require_migrated_database

            settings = ctx.find_object(Settings) or load_settings()
            require_migrated_database(settings.effective_database_url, settings.timeouts)
        return callback(*args, **kwargs)

    checked.checks_the_schema_first = True  # type: ignore[attr-defined]
    return checked


@click.group(cls=LazyGroup, name="streamrec")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help=CONFIG_OPTION_HELP,
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """streamrec: streaming EfficientRec recommendations over Kafka and SQL."""
    from streamrec.observability.logs import mask_unconfigured_logging

    # Commands that set up no logging still print libraries' warnings: masked as well.
    mask_unconfigured_logging()
    ctx.obj = load_settings(config_file)
    ctx.meta[CONFIG_FILE_META_KEY] = config_file or os.environ.get(CONFIG_FILE_VARIABLE)


def main(argv: list[str] | None = None) -> None:
    """The console script: ``streamrec`` with ``argv`` (default: the process's arguments).
    Returns when the command succeeded; exits with its status otherwise."""
    try:
        status = cli.main(args=argv, prog_name="streamrec", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("streamrec: aborted", err=True)
        sys.exit(INTERRUPTED_EXIT_STATUS)
    # Without standalone mode, click returns the status a command gave with ctx.exit(status).
    if isinstance(status, int) and status != 0:
        sys.exit(status)


if __name__ == "__main__":
    main()
