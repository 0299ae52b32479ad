"""Engines: SQLite gets its safety settings, no message ever shows a password, and a
database that does not answer gives one line that says which one."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streamrec.cli.main import main
from streamrec.config import TimeoutSettings
from streamrec.storage import (
    DatabaseUnavailableError,
    UnitOfWork,
    UnsupportedDatabaseError,
    check_connection,
    create_database_engine,
    masked_url,
)


@pytest.fixture
def unreachable_postgresql_url() -> str:
    """A URL with a password, on a local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://reader:s3cret-pw@127.0.0.1:{port}/recs"


def test_masked_url_hides_the_password_and_keeps_the_rest() -> None:
    shown = masked_url("postgresql+psycopg://reader:s3cret-pw@db.internal:5433/recs")

    assert shown == "postgresql+psycopg://reader:***@db.internal:5433/recs"


def test_an_unparseable_url_is_not_shown_at_all() -> None:
    assert "s3cret" not in masked_url("::reader:s3cret-pw")


def test_sqlite_engine_creates_the_directory_and_sets_wal_foreign_keys_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "deeper" / "streamrec.db"
    engine = create_database_engine(
        f"sqlite:///{path}", timeouts=TimeoutSettings(sqlite_busy_ms=1_234)
    )
    try:
        with engine.connect() as connection:
            journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
            busy_timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    finally:
        engine.dispose()

    assert path.parent.is_dir()
    assert (journal_mode, foreign_keys) == ("wal", 1)
    assert busy_timeout == 1_234


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://reader:s3cret-pw@host/recs", "unsupported database 'mysql'"),
        ("::reader:s3cret-pw", "not a valid SQLAlchemy URL"),
        ("postgresql+nosuchdriver://reader:s3cret-pw@host/recs", "no installed driver"),
    ],
)
def test_an_unusable_url_is_refused_without_showing_the_password(url: str, reason: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match=reason) as refusal:
        create_database_engine(url)

    assert "s3cret" not in str(refusal.value)


def test_an_unreachable_database_is_one_line_naming_the_masked_url(
    unreachable_postgresql_url: str,
) -> None:
    engine = create_database_engine(unreachable_postgresql_url)

    with pytest.raises(DatabaseUnavailableError) as refusal:
        check_connection(engine)

    message = str(refusal.value)
    assert message.startswith(f"cannot reach database {masked_url(unreachable_postgresql_url)}")
    assert "s3cret" not in message
    assert "\n" not in message


def test_a_unit_of_work_on_an_unreachable_database_says_so(
    unreachable_postgresql_url: str,
) -> None:
    engine = create_database_engine(unreachable_postgresql_url)

    with pytest.raises(DatabaseUnavailableError, match="cannot reach database"):
        UnitOfWork(engine).__enter__()


def test_streamrec_db_on_an_unreachable_database_exits_2_with_one_line(
    unreachable_postgresql_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STREAMREC_DATABASE_URL", unreachable_postgresql_url)

    with pytest.raises(SystemExit) as exit_info:
        main(["db", "upgrade"])

    error_output = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert error_output.count("\n") == 1
    assert "cannot reach database postgresql+psycopg://reader:***@127.0.0.1" in error_output
    assert "s3cret" not in error_output
