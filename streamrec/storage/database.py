"""Engines for the two supported databases: PostgreSQL in production, SQLite for a first run.

The same code runs on both; this module holds the few places where they differ: connection
options, and SQLite's locking (WAL, ``BEGIN IMMEDIATE`` so that two writers queue behind
``busy_timeout`` instead of failing), and it never shows a password.

>>> masked_url("postgresql+psycopg://reader:secret@db.example/recs")
'postgresql+psycopg://reader:***@db.example/recs'
>>> engine = create_database_engine("sqlite://")
>>> with engine.connect() as connection:
...     connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from streamrec.config import TimeoutSettings
from streamrec.redaction import mask_secrets
from streamrec.storage.errors import DatabaseUnavailableError, UnsupportedDatabaseError


def masked_url(url: str | URL) -> str:
    """The URL with its password and secret query parameters (``password``,
    ``sslpassword``, ...) replaced by ``***``, safe for messages and logs.

    >>> masked_url("postgresql+psycopg://reader@db.example/recs?password=secret")
    'postgresql+psycopg://reader@db.example/recs?password=***'
    """
    try:
        # Parsed first: SQLAlchemy finds the password wherever its characters would end a
        # plain pattern (an unescaped '/' or space, say).
        rendered = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # An unparseable URL may still contain a secret: show none of it.
        return "<unparseable database URL>"
    return mask_secrets(rendered)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for any other database, an in-memory one, a ``file:``
    URI or a URL that does not parse (create_database_engine says what is wrong with it).

    >>> sqlite_file("sqlite:///data/streamrec.db"), sqlite_file("sqlite://")
    (PosixPath('data/streamrec.db'), None)
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def create_database_engine(
    url: str,
    *,
    timeouts: TimeoutSettings | None = None,
    enforce_foreign_keys: bool = True,
    **engine_options: Any,
) -> Engine:
    """An engine for a PostgreSQL or SQLite URL.

    SQLite gets WAL, foreign keys, a busy timeout and its parent directory created;
    PostgreSQL gets pre-ping (a restarted server does not break the pool) and a connect
    timeout. The two timeouts are ``timeouts``' (``settings.timeouts``; None: their
    defaults). ``enforce_foreign_keys=False`` is for SQLite batch migrations, which copy
    tables; ``engine_options`` go to ``sqlalchemy.create_engine``.
    Raises DatabaseUnavailableError or UnsupportedDatabaseError with a one-line message.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnsupportedDatabaseError(
            "the database URL is not a valid SQLAlchemy URL, e.g. "
            "postgresql+psycopg://user@host/db or sqlite:///path/streamrec.db"
        ) from None
    backend = parsed.get_backend_name()
    timeouts = timeouts or TimeoutSettings()
    try:
        if backend == "sqlite":
            return _create_sqlite_engine(
                parsed, timeouts.sqlite_busy_ms, enforce_foreign_keys, engine_options
            )
        if backend == "postgresql":
            return _create_postgresql_engine(
                parsed, timeouts.database_connect_seconds, engine_options
            )
    except NoSuchModuleError:
        raise UnsupportedDatabaseError(
            f"no installed driver for database URL {masked_url(parsed)}"
        ) from None
    raise UnsupportedDatabaseError(
        f"unsupported database {backend!r} in {masked_url(parsed)}: use postgresql or sqlite"
    )


def describe_failure(url: str | URL, error: BaseException) -> str:
    """One line saying which database cannot be reached and why, without the password."""
    return f"cannot reach database {masked_url(url)}: {first_line_of(error)}"


def first_line_of(error: BaseException) -> str:
    """The driver's own message, first line only (SQLAlchemy appends SQL and a link)."""
    reason = getattr(error, "orig", None) or error
    return (str(reason).strip().splitlines() or [type(reason).__name__])[0]


def check_connection(engine: Engine) -> None:
    """Open one connection, or raise DatabaseUnavailableError naming the masked URL."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as error:
        raise DatabaseUnavailableError(describe_failure(engine.url, error)) from None


def _create_sqlite_engine(
    url: URL, busy_timeout_ms: int, enforce_foreign_keys: bool, engine_options: dict[str, Any]
) -> Engine:
    database_file = sqlite_file(url)
    if database_file is not None:
        try:
            database_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnavailableError(
                f"cannot create the directory of {masked_url(url)}: {error.strerror}"
            ) from None
    engine = create_engine(url, **engine_options)

    @event.listens_for(engine, "connect")
    def configure_connection(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL stays consistent after a crash; only the last commit may be lost.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if enforce_foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin_immediately(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
        # when another writer got in between; taking the write lock up front waits instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _create_postgresql_engine(
    url: URL, connect_timeout_seconds: int, engine_options: dict[str, Any]
) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = connect_timeout_seconds
    options = {"pool_pre_ping": True, "connect_args": connect_args, **engine_options}
    return create_engine(url, **options)
