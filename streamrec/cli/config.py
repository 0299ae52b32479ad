"""``streamrec config show``: the effective settings, secrets masked."""

from __future__ import annotations

import json

import click

from streamrec.config import Settings, masked


@click.group(name="config")
def command() -> None:
    """Inspect the effective configuration."""


@command.command(name="show")
@click.pass_obj
def show(settings: Settings) -> None:
    """Print the effective settings (environment > file > defaults), secrets masked."""
    click.echo(json.dumps(masked(settings), indent=2, sort_keys=True))


@command.command(name="docs")
def docs() -> None:
    """Print the Markdown reference of every setting (docs/configuration.md)."""
    from streamrec.config import settings_reference

    click.echo(settings_reference(), nl=False)
