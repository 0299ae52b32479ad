"""Schema migrations, run through Alembic with a config built here, so they work from any
working directory and from an installed package (no alembic.ini).

>>> head_revision()
'0007'
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError

import streamrec
from streamrec.errors import UserFacingError
from streamrec.storage.database import (
    check_connection,
    create_database_engine,
    describe_failure,
    first_line_of,
    masked_url,
)
from streamrec.storage.errors import DatabaseUnavailableError

# The top-level `migrations` package sits beside `streamrec`: in a checkout and in
# site-packages alike.
MIGRATIONS_DIRECTORY = Path(streamrec.__file__).resolve().parent.parent / "migrations"
# Read by migrations/env.py. Not a main option: ConfigParser would interpolate the '%' of
# URL-escaped passwords.
DATABASE_URL_ATTRIBUTE = "database_url"


class MigrationError(UserFacingError):
    """Alembic refused (e.g. an unknown revision); the message says why."""


def alembic_config(database_url: str) -> Config:
    if not (MIGRATIONS_DIRECTORY / "env.py").is_file():
        raise MigrationError(f"the migrations are not installed at {MIGRATIONS_DIRECTORY}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    config.attributes[DATABASE_URL_ATTRIBUTE] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    _run(database_url, lambda config: command.upgrade(config, revision))


def downgrade(database_url: str, revision: str) -> None:
    _run(database_url, lambda config: command.downgrade(config, revision))


def current_revision(database_url: str) -> str | None:
    """The database's revision; None for a database that was never migrated."""
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise DatabaseUnavailableError(describe_failure(database_url, error)) from None
    finally:
        engine.dispose()


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def _run(database_url: str, operation: Callable[[Config], None]) -> None:
    config = alembic_config(database_url)
    engine = create_database_engine(database_url)
    try:
        # Told apart up front: an unreachable database is not a failed migration.
        check_connection(engine)
    finally:
        engine.dispose()
    try:
        operation(config)
    except CommandError as error:
        raise MigrationError(f"{masked_url(database_url)}: {error}") from None
    except DBAPIError as error:
        raise MigrationError(
            f"migration of {masked_url(database_url)} failed: {first_line_of(error)}"
        ) from None
