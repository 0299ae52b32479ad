"""``streamrec db``: create and migrate the database schema (Alembic, no alembic.ini needed).

The database is the settings' ``database_url`` (a SQLite file in the data directory when
unset). A database that cannot be reached ends in one line naming the URL, password masked.
"""

from __future__ import annotations

import click

from streamrec.config import Settings
from streamrec.storage import masked_url
from streamrec.storage.migrations import current_revision, downgrade, head_revision, upgrade


@click.group(name="db")
def command() -> None:
    """Create, migrate and inspect the database schema."""


@command.command(name="upgrade")
@click.argument("revision", default="head")
@click.pass_obj
def upgrade_command(settings: Settings, revision: str) -> None:
    """Migrate the schema up to REVISION (default: head, the latest)."""
    url = settings.effective_database_url
    upgrade(url, revision, timeouts=settings.timeouts)
    _report(settings)


@command.command(name="downgrade")
@click.argument("revision")
@click.pass_obj
def downgrade_command(settings: Settings, revision: str) -> None:
    """Migrate the schema down to REVISION ('base' removes every table)."""
    url = settings.effective_database_url
    downgrade(url, revision, timeouts=settings.timeouts)
    _report(settings)


@command.command(name="current")
@click.pass_obj
def current_command(settings: Settings) -> None:
    """Show the schema revision of the database."""
    _report(settings)


def _report(settings: Settings) -> None:
    url = settings.effective_database_url
    current = current_revision(url, settings.timeouts)
    head = head_revision()
    if current is None:
        state = "no schema (run `streamrec db upgrade`)"
    elif current == head:
        state = f"revision {current} (head)"
    else:
        state = f"revision {current}; head is {head} (run `streamrec db upgrade`)"
    click.echo(f"{masked_url(url)}: {state}")
