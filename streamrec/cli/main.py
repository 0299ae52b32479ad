"""Entry point of the ``streamrec`` console script.

Each capability lives in its own module under ``streamrec.cli`` and exposes a click command
or group named ``command``; this module only collects them. Errors a user can fix (bad
settings, a missing binary, a database that does not answer) end as one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from streamrec.config import ConfigurationError, load_settings
from streamrec.errors import UserFacingError

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
]


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it runs, so `streamrec config show` stays fast
    and does not import torch."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name.replace("_", "-") for name in COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = cmd_name.replace("-", "_")
        if module_name not in COMMAND_MODULES:
            return None
        module = importlib.import_module(f"streamrec.cli.{module_name}")
        return module.command


@click.group(cls=LazyGroup)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $STREAMREC_CONFIG_FILE).",
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """streamrec: streaming EfficientRec recommendations over Kafka and SQL."""
    ctx.obj = load_settings(config_file)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="streamrec", standalone_mode=False)
    except (ConfigurationError, UserFacingError) as error:
        click.echo(f"streamrec: {error}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("streamrec: aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
