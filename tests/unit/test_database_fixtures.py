"""The PostgreSQL tests need no variable: with none set, the fixtures use the local server and
create its test database when it is missing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from streamrec.storage import create_database_engine
from streamrec.storage.errors import DatabaseUnavailableError
from tests.fixtures.databases import (
    DEFAULT_TEST_DATABASE_URL,
    MAINTENANCE_DATABASE,
    TEST_DATABASE_URL_VARIABLE,
    create_database_if_missing,
    reachable_test_database_url,
)

pytestmark = pytest.mark.postgres


def _exists(server_url: str, name: str) -> bool:
    engine = create_database_engine(
        make_url(server_url).set(database=MAINTENANCE_DATABASE).render_as_string(False)
    )
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            return row is not None
    finally:
        engine.dispose()


@pytest.fixture
def missing_database_url(postgresql_server_url: str) -> Iterator[str]:
    """A URL on the test server naming a database that does not exist yet; the database is
    dropped afterwards (only this uniquely named one, never an existing database)."""
    name = f"streamrec_fixture_check_{uuid.uuid4().hex[:10]}"
    server = make_url(postgresql_server_url)
    assert not _exists(postgresql_server_url, name)
    yield server.set(database=name).render_as_string(hide_password=False)
    engine = create_database_engine(
        server.set(database=MAINTENANCE_DATABASE).render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


def test_with_no_variable_the_default_url_is_used_and_its_database_created(
    missing_database_url: str,
) -> None:
    name = make_url(missing_database_url).database
    assert name is not None

    chosen = reachable_test_database_url({}, default=missing_database_url)

    assert chosen == missing_database_url
    assert _exists(missing_database_url, name)


def test_the_variable_wins_and_nothing_is_created_for_it(missing_database_url: str) -> None:
    name = make_url(missing_database_url).database
    assert name is not None
    with pytest.raises(DatabaseUnavailableError):
        reachable_test_database_url({TEST_DATABASE_URL_VARIABLE: missing_database_url})
    assert not _exists(missing_database_url, name)


def test_an_existing_database_is_left_as_it_is(missing_database_url: str) -> None:
    assert create_database_if_missing(missing_database_url) is True
    assert create_database_if_missing(missing_database_url) is False


def test_the_default_is_the_local_server_test_database() -> None:
    default = make_url(DEFAULT_TEST_DATABASE_URL)
    assert (default.host, default.port, default.database) == ("127.0.0.1", 5432, "test")
