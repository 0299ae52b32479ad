"""A unit of work keeps only what was committed, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import IntegrityError

from streamrec.state import Interaction, UserProfile
from streamrec.storage import DeadLetter, UnitOfWork

UnitOfWorkFactory = Callable[[], UnitOfWork]


class ConsumerCrashed(Exception):
    pass


def _write_a_batch(uow: UnitOfWork, offset: int) -> None:
    """What a consumer writes for one batch, across several repositories."""
    uow.interactions.save_many([Interaction("u1", f"i{offset}", 0.5, f"e{offset}", "click", 1.0)])
    uow.dead_letters.add_many([DeadLetter("interactions", b"{", "invalid_json")])
    uow.offsets.save("consumers", "interactions", {0: offset})


def _stored(uow: UnitOfWork) -> tuple[int, dict[str, int], dict[int, int]]:
    return (
        uow.interactions.count(),
        uow.dead_letters.counts_by_reason(),
        uow.offsets.get("consumers", "interactions"),
    )


def test_an_exception_rolls_back_everything_since_the_last_commit(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with pytest.raises(ConsumerCrashed), unit_of_work_factory() as uow:
        _write_a_batch(uow, offset=1)
        uow.commit()
        _write_a_batch(uow, offset=2)
        raise ConsumerCrashed

    with unit_of_work_factory() as uow:
        assert _stored(uow) == (1, {"invalid_json": 1}, {0: 1})


def test_work_that_is_never_committed_is_discarded(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        _write_a_batch(uow, offset=1)

    with unit_of_work_factory() as uow:
        assert _stored(uow) == (0, {}, {})


def test_an_explicit_rollback_discards_and_the_unit_of_work_goes_on(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        _write_a_batch(uow, offset=1)
        uow.rollback()
        _write_a_batch(uow, offset=2)
        uow.commit()

    with unit_of_work_factory() as uow:
        assert _stored(uow) == (1, {"invalid_json": 1}, {0: 2})


def test_a_unit_of_work_is_used_inside_one_with_block_at_a_time(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    uow = unit_of_work_factory()
    with pytest.raises(RuntimeError, match="inside a `with` block"):
        uow.commit()
    with uow, pytest.raises(RuntimeError, match="already in use"):
        uow.__enter__()


def _write_overlapped(uow: UnitOfWork, offset: int) -> None:
    """_write_a_batch with the upserts overlapped (an insert that returns the ids the
    database assigned, like the dead letters', would fail inside the block)."""
    with uow.overlapped_writes():
        uow.interactions.save_many(
            [Interaction("u1", f"i{offset}", 0.5, f"e{offset}", "click", 1.0)]
        )
        uow.offsets.save("consumers", "interactions", {0: offset})
    uow.dead_letters.add_many([DeadLetter("interactions", b"{", "invalid_json")])


def test_overlapped_writes_are_kept_or_discarded_with_the_rest(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    with unit_of_work_factory() as uow:
        _write_overlapped(uow, offset=1)
        uow.commit()
    with pytest.raises(ConsumerCrashed), unit_of_work_factory() as uow:
        _write_overlapped(uow, offset=2)
        raise ConsumerCrashed

    with unit_of_work_factory() as uow:
        assert _stored(uow) == (1, {"invalid_json": 1}, {0: 1})


def test_a_failed_overlapped_write_fails_the_block_and_nothing_is_kept(
    unit_of_work_factory: UnitOfWorkFactory,
) -> None:
    # On PostgreSQL the error arrives when the block waits for its statements, not at the
    # statement itself: either way the block raises and the transaction is lost.
    unknown_version = 999
    with pytest.raises(IntegrityError), unit_of_work_factory() as uow:
        _write_a_batch(uow, offset=1)
        with uow.overlapped_writes():
            uow.users.save_many([UserProfile.new("u1", dimension=2, model_version=unknown_version)])
        uow.commit()

    with unit_of_work_factory() as uow:
        assert _stored(uow) == (0, {}, {})


def test_without_pipeline_mode_overlapped_writes_run_as_usual(
    unit_of_work_factory: UnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with a libpq older than 14, which psycopg's pipeline mode needs.
    psycopg = pytest.importorskip("psycopg")
    monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    with unit_of_work_factory() as uow:
        _write_overlapped(uow, offset=1)
        uow.commit()

    with unit_of_work_factory() as uow:
        assert _stored(uow) == (1, {"invalid_json": 1}, {0: 1})
