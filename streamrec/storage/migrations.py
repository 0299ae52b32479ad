"""Schema migrations, run through Alembic with a config built here, so they work from any
working directory and from an installed package (no alembic.ini).

>>> newest = max(path.name[:4] for path in (MIGRATIONS_DIRECTORY / "versions").glob("0*.py"))
>>> head_revision() == newest  # the revision a database is migrated to
True

Commands that use the stored state call ``require_migrated_database`` first: a database that
is missing or behind the code ends them in one line that says to run ``streamrec db upgrade``,
and a SQLite file that does not exist is not created by asking.
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
from streamrec.config import TimeoutSettings
from streamrec.errors import UserFacingError
from streamrec.storage.database import (
    check_connection,
    create_database_engine,
    describe_failure,
    first_line_of,
    masked_url,
    sqlite_file,
)
from streamrec.storage.errors import (
    DatabaseMissingError,
    DatabaseNotMigratedError,
    DatabaseUnavailableError,
)

# The top-level `migrations` package sits beside `streamrec`: in a checkout and in
# site-packages alike.
MIGRATIONS_DIRECTORY = Path(streamrec.__file__).resolve().parent.parent / "migrations"
# Read by migrations/env.py. Not a main option: ConfigParser would interpolate the '%' of
# URL-escaped passwords.
DATABASE_URL_ATTRIBUTE = "database_url"
# The database timeouts (``settings.timeouts``) the migration's engine connects with.
TIMEOUTS_ATTRIBUTE = "timeouts"


class MigrationError(UserFacingError):
    """Alembic refused (e.g. an unknown revision); the message says why."""


def alembic_config(database_url: str, timeouts: TimeoutSettings | None = None) -> Config:
    if not (MIGRATIONS_DIRECTORY / "env.py").is_file():
        raise MigrationError(f"the migrations are not installed at {MIGRATIONS_DIRECTORY}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIRECTORY))
    config.attributes[DATABASE_URL_ATTRIBUTE] = database_url
    config.attributes[TIMEOUTS_ATTRIBUTE] = timeouts
    return config


def upgrade(
    database_url: str, revision: str = "head", *, timeouts: TimeoutSettings | None = None
) -> None:
    _run(database_url, timeouts, lambda config: command.upgrade(config, revision))


def downgrade(database_url: str, revision: str, *, timeouts: TimeoutSettings | None = None) -> None:
    """Migrate down to ``revision``; a SQLite file that does not exist is not created.

    >>> downgrade("sqlite:///no/such/dir/streamrec.db", "base")
    Traceback (most recent call last):
    ...
    streamrec.storage.errors.DatabaseMissingError: no database at no/such/dir/streamrec.db: \
run `streamrec db upgrade` or set STREAMREC_DATABASE_URL
    """
    require_existing_database(database_url)
    _run(database_url, timeouts, lambda config: command.downgrade(config, revision))


def current_revision(database_url: str, timeouts: TimeoutSettings | None = None) -> str | None:
    """The database's revision; None for a database that was never migrated, or a SQLite
    file that does not exist (which asking does not create)."""
    database_file = sqlite_file(database_url)
    if database_file is not None and not database_file.exists():
        return None
    engine = create_database_engine(database_url, timeouts=timeouts)
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


def require_existing_database(database_url: str) -> None:
    """Raise DatabaseMissingError for a SQLite file that does not exist (creating nothing);
    a server database is checked when it is connected to."""
    database_file = sqlite_file(database_url)
    if database_file is not None and not database_file.exists():
        raise DatabaseMissingError(
            f"no database at {database_file}: run `streamrec db upgrade` "
            "or set STREAMREC_DATABASE_URL"
        )


def require_migrated_database(database_url: str, timeouts: TimeoutSettings | None = None) -> None:
    """Check, creating nothing, that the database exists and its schema is at this code's
    head revision (or at a later one, which a newer streamrec migrated).

    Raises DatabaseMissingError for a SQLite file that does not exist,
    DatabaseNotMigratedError for a schema that is absent or older, and
    DatabaseUnavailableError for a database that does not answer; each one line.

    >>> require_migrated_database("sqlite:///no/such/dir/streamrec.db")
    Traceback (most recent call last):
    ...
    streamrec.storage.errors.DatabaseMissingError: no database at no/such/dir/streamrec.db: \
run `streamrec db upgrade` or set STREAMREC_DATABASE_URL
    """
    require_existing_database(database_url)
    current, head = current_revision(database_url, timeouts), head_revision()
    script = ScriptDirectory.from_config(alembic_config(database_url))
    known = {revision.revision for revision in script.walk_revisions()}
    if current == head or (current is not None and current not in known):
        return
    raise DatabaseNotMigratedError(
        f"database at {masked_url(database_url)} is not migrated (revision {current}, "
        f"expected {head}): run `streamrec db upgrade`"
    )


def _run(
    database_url: str, timeouts: TimeoutSettings | None, operation: Callable[[Config], None]
) -> None:
    config = alembic_config(database_url, timeouts)
    engine = create_database_engine(database_url, timeouts=timeouts)
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
