"""The migrations build exactly the declared schema, undo it completely, and `streamrec db`
drives them, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from streamrec.cli.main import main
from streamrec.storage import UnitOfWork, create_database_engine
from streamrec.storage.migrations import (
    MigrationError,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from streamrec.storage.tables import Base


def _table_names(url: str) -> set[str]:
    engine = create_database_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_to_head_builds_exactly_the_declared_tables(empty_database_url: str) -> None:
    upgrade(empty_database_url)

    engine = create_database_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
    assert current_revision(empty_database_url) == head_revision()


def test_downgrade_to_base_removes_every_table_and_upgrade_works_again(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url)
    downgrade(empty_database_url, "base")

    assert _table_names(empty_database_url) <= {"alembic_version"}
    assert current_revision(empty_database_url) is None

    upgrade(empty_database_url)
    assert set(Base.metadata.tables) <= _table_names(empty_database_url)


def test_offsets_stored_before_0005_count_as_acknowledged(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0004")
    engine = create_database_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "insert into consumer_offsets (consumer_group, topic, partition, next_offset,"
                    " updated_at) values ('g', 'interactions', 0, 120, 1.0),"
                    " ('g', 'interactions', 1, 7, 1.0)"
                )
            )
        upgrade(empty_database_url)
        with UnitOfWork(engine) as uow:
            assert uow.offsets.resume_offsets("g", "interactions") == {0: 120, 1: 7}
    finally:
        engine.dispose()


def test_an_unknown_revision_is_refused_with_the_reason(empty_database_url: str) -> None:
    with pytest.raises(MigrationError, match="Can't locate revision"):
        upgrade(empty_database_url, "no-such-revision")


def test_streamrec_db_upgrades_reports_and_downgrades(
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STREAMREC_DATABASE_URL", empty_database_url)

    main(["db", "current"])
    before = capsys.readouterr().out
    main(["db", "upgrade"])
    after_upgrade = capsys.readouterr().out
    main(["db", "downgrade", "base"])
    after_downgrade = capsys.readouterr().out

    assert "no schema" in before
    assert f"revision {head_revision()} (head)" in after_upgrade
    assert "no schema" in after_downgrade
    assert current_revision(empty_database_url) is None
