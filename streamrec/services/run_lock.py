"""The database lock that keeps two trainer runs from overlapping, even across processes and
machines: one interface, two implementations.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection
  of its own for as long as the run lasts. A holder killed by ``kill -9`` loses its
  connection, and the server frees the lock at once. Who holds it is also written to the
  ``trainer_locks`` table, for messages only.
- SQLite: a lease row in ``trainer_locks``: the holder renews it from a background thread;
  a holder that died stops renewing, and the lease expires after ``lease_seconds``.

>>> from streamrec.storage.memory import create_memory_database
>>> engine = create_memory_database()
>>> first = create_run_lock(engine, owner="trainer-a")
>>> second = create_run_lock(engine, owner="trainer-b")
>>> first.acquire(), second.acquire(), second.holder()
(True, False, 'trainer-a')
>>> first.release()
>>> second.acquire()
True
>>> second.release()
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, Engine, bindparam, case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from streamrec.storage.tables import TrainerLockRow, table_of

logger = logging.getLogger(__name__)

TRAINER_LOCK_NAME = "streamrec-trainer"
DEFAULT_LEASE_SECONDS = 60.0
# PostgreSQL's advisory lock holds until released; the informational row never expires.
NEVER = float("inf")

_LOCKS = table_of(TrainerLockRow)


class RunLock(Protocol):
    """A non-blocking, process-independent mutual exclusion for trainer runs."""

    owner: str

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; False (at once) if somebody does."""

    def release(self) -> None:
        """Give the lock up (nothing happens if it is not held)."""

    def holder(self) -> str | None:
        """Who holds the lock, as far as the database knows; None if nobody."""

    def still_held(self) -> bool:
        """Whether this lock is still ours (a lease may have expired under a stalled holder)."""


def default_owner() -> str:
    """host:pid, how a lock holder is named in messages."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create_run_lock(
    engine: Engine,
    name: str = TRAINER_LOCK_NAME,
    owner: str | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> RunLock:
    """The lock that fits the database behind ``engine``."""
    owner = owner or default_owner()
    if engine.dialect.name == "postgresql":
        return AdvisoryRunLock(engine, name, owner)
    return LeaseRunLock(engine, name, owner, lease_seconds)


class AdvisoryRunLock:
    """PostgreSQL's session advisory lock, on a connection kept open while it is held."""

    def __init__(
        self, engine: Engine, name: str, owner: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.name = name
        self.owner = owner
        self._engine = engine
        self._clock = clock
        self._key: int | None = None
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None:
            return True
        connection = self._engine.connect()
        try:
            key = self._key_for(connection)
            taken = bool(
                connection.scalar(select(func.pg_try_advisory_lock(bindparam("key", key))))
            )
            if taken:
                now = self._clock()
                _write_holder(connection, self.name, self.owner, now, NEVER)
            # Commit, so the lock's connection is idle and never holds a snapshot or row locks.
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(
                delete(_LOCKS).where(_LOCKS.c.name == self.name, _LOCKS.c.owner == self.owner)
            )
            connection.scalar(
                select(func.pg_advisory_unlock(bindparam("key", self._key_for(connection))))
            )
            connection.commit()
        finally:
            # Closing alone frees the lock too: the pool resets the session.
            connection.close()

    def holder(self) -> str | None:
        with self._engine.connect() as connection:
            unsigned = self._key_for(connection) & 0xFFFF_FFFF_FFFF_FFFF
            # A bigint advisory key shows in pg_locks as its high and low 32 bits.
            statement = text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid = :high AND objid = :low AND objsubid = 1"
            ).bindparams(high=unsigned >> 32, low=unsigned & 0xFFFF_FFFF)
            held = bool(connection.scalar(statement))
            owner = connection.scalar(select(_LOCKS.c.owner).where(_LOCKS.c.name == self.name))
        if not held:
            return None
        return owner or "an unknown PostgreSQL session"

    def still_held(self) -> bool:
        return self._connection is not None and not self._connection.closed

    def _key_for(self, connection: Connection) -> int:
        # Advisory locks are per database: the schema in the key keeps two installations
        # that share a database (one schema each) from excluding each other.
        if self._key is None:
            schema = connection.scalar(select(func.current_schema()))
            self._key = advisory_key(f"{schema}.{self.name}")
        return self._key


class LeaseRunLock:
    """A lease row renewed by a background thread while held (for SQLite)."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        owner: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.owner = owner
        self._engine = engine
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._renewer: threading.Thread | None = None
        self._stop_renewing = threading.Event()
        self._lost = False

    def acquire(self) -> bool:
        if self._renewer is not None:
            return True
        if not self._take_or_renew():
            return False
        self._lost = False
        self._stop_renewing.clear()
        self._renewer = threading.Thread(
            target=self._renew_until_released, name=f"lease-{self.name}", daemon=True
        )
        self._renewer.start()
        return True

    def release(self) -> None:
        if self._renewer is None:
            return
        self.abandon()
        with self._engine.begin() as connection:
            connection.execute(
                delete(_LOCKS).where(_LOCKS.c.name == self.name, _LOCKS.c.owner == self.owner)
            )

    def abandon(self) -> None:
        """Stop renewing without giving the lease back, as a crashed holder would: the lock
        stays taken until the lease expires."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            self._stop_renewing.set()
            renewer.join()

    def holder(self) -> str | None:
        with self._engine.begin() as connection:
            row = connection.execute(
                select(_LOCKS.c.owner, _LOCKS.c.expires_at).where(_LOCKS.c.name == self.name)
            ).first()
        if row is None or row.expires_at <= self._clock():
            return None
        return str(row.owner)

    def still_held(self) -> bool:
        return self._renewer is not None and not self._lost

    def _take_or_renew(self) -> bool:
        """One statement: take the row if it is free, expired or ours; True if we hold it."""
        now = self._clock()
        with self._engine.begin() as connection:
            return _write_holder(
                connection, self.name, self.owner, now, now + self._lease_seconds, only_if_free=now
            )

    def _renew_until_released(self) -> None:
        interval = self._lease_seconds / 3
        while not self._stop_renewing.wait(interval):
            try:
                if not self._take_or_renew():
                    self._lost = True
                    logger.error("the run lock %s was taken over by %s", self.name, self.holder())
                    return
            except Exception:  # a busy or restarting database: try again next interval
                logger.warning("could not renew the run lock %s", self.name, exc_info=True)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL advisory locks are keyed by bigint).

    >>> advisory_key("streamrec-trainer") == advisory_key("streamrec-trainer")
    True
    """
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _write_holder(
    connection: Connection,
    name: str,
    owner: str,
    now: float,
    expires_at: float,
    only_if_free: float | None = None,
) -> bool:
    """Upsert the lock row for ``owner``. With ``only_if_free`` (the current time), a row of
    another owner is only replaced once its lease expired; returns whether ours now."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_LOCKS).values(
        name=name, owner=owner, acquired_at=now, expires_at=expires_at
    )
    excluded = statement.excluded
    condition = None
    if only_if_free is not None:
        condition = (_LOCKS.c.owner == excluded.owner) | (_LOCKS.c.expires_at <= only_if_free)
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "owner": excluded.owner,
            # A renewal keeps the original acquisition time.
            "acquired_at": case(
                (_LOCKS.c.owner == excluded.owner, _LOCKS.c.acquired_at),
                else_=excluded.acquired_at,
            ),
            "expires_at": excluded.expires_at,
        },
        where=condition,
    ).returning(_LOCKS.c.owner)
    return connection.scalar(statement) == owner
