"""Alembic environment: the URL (and the database timeouts) come from the Alembic config
when the caller set one (``streamrec.storage.migrations`` and the tests do), else from the
streamrec settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from streamrec.storage.database import create_database_engine
from streamrec.storage.tables import Base

DATABASE_URL_ATTRIBUTE = "database_url"
TIMEOUTS_ATTRIBUTE = "timeouts"

target_metadata = Base.metadata


def _database_url() -> str:
    config = context.config
    url = config.attributes.get(DATABASE_URL_ATTRIBUTE) or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from streamrec.config import load_settings

    return load_settings().effective_database_url


def _is_sqlite(url_or_dialect_name: str) -> bool:
    return url_or_dialect_name.startswith("sqlite")


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``)."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=_is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # SQLite batch migrations copy and drop tables, which enforced foreign keys would refuse.
    engine = create_database_engine(
        _database_url(),
        timeouts=context.config.attributes.get(TIMEOUTS_ATTRIBUTE),
        enforce_foreign_keys=False,
    )
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=_is_sqlite(connection.dialect.name),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
