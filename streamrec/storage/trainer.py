"""The repositories of rebuilds and training runs: the version being rebuilt, insert-if-absent
user states, rebuild progress, and cheap samples of users. Every UnitOfWork holds them as
``builds``, ``samples`` and ``run_log``.

>>> from streamrec.storage.memory import create_memory_database
>>> from streamrec.storage.unit_of_work import UnitOfWork
>>> from streamrec.state import ModelStatus, ModelVersion, UserProfile
>>> engine = create_memory_database()
>>> with UnitOfWork(engine) as uow:
...     active = uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, {}, b""))
...     building = uow.models.add(ModelVersion(None, ModelStatus.BUILDING, {}, b""))
...     versions = uow.builds.serving_versions()
...     first = uow.builds.insert_missing_states([UserProfile.new("u1", 2, model_version=building)])
...     again = uow.builds.insert_missing_states([UserProfile.new("u1", 2, model_version=building)])
>>> versions == ServingVersions(active=active, building=building), first, again
(True, {'u1'}, set())
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Row as SqlRow
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from streamrec.state import ModelStatus, UserProfile
from streamrec.storage.repositories.base import Repository
from streamrec.storage.repositories.users import new_state_token, user_state_row
from streamrec.storage.statements import (
    array_parameter_name,
    chunked,
    column_array_values,
    unnest_select,
    upsert,
)
from streamrec.storage.tables import (
    InteractionRow,
    ModelRebuildRow,
    ModelVersionRow,
    TrainingRunRow,
    UserRow,
    UserStateRow,
    table_of,
)

_MODELS = table_of(ModelVersionRow)
_STATES = table_of(UserStateRow)
_USERS = table_of(UserRow)
_INTERACTIONS = table_of(InteractionRow)
_REBUILDS = table_of(ModelRebuildRow)
_RUNS = table_of(TrainingRunRow)
# SQLite: a state row has nine columns, so 500 rows stay far below its parameter limit.
STATE_INSERT_CHUNK = 500
_SURROGATES = range(0xD800, 0xE000)


@dataclass(frozen=True, slots=True)
class ServingVersions:
    """The active version and the version being rebuilt (None when there is none), read in
    one statement so that a flip between two reads can never be half seen."""

    active: int | None
    building: int | None


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    """How far the rebuild of ``model_version`` got: ``users_done`` of about ``users_total``
    users are behind ``cursor`` (the last user id of the last committed chunk); the rebuild
    built ``users_built`` of them, the consumers the others."""

    model_version: int
    users_total: int
    users_done: int
    users_built: int
    cursor: str | None
    started_at: float
    updated_at: float
    finished_at: float | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def share_done(self) -> float:
        if self.finished:
            return 1.0
        return min(1.0, self.users_done / self.users_total) if self.users_total else 0.0


class ModelBuildRepository(Repository):
    """The version being rebuilt beside the active one, its user states and its progress."""

    def serving_versions(self) -> ServingVersions:
        statement = select(_MODELS.c.version, _MODELS.c.status).where(
            _MODELS.c.status.in_([ModelStatus.ACTIVE.value, ModelStatus.BUILDING.value])
        )
        found = {status: version for version, status in self._connection.execute(statement)}
        return ServingVersions(
            found.get(ModelStatus.ACTIVE.value), found.get(ModelStatus.BUILDING.value)
        )

    def building_version(self) -> int | None:
        return self.serving_versions().building

    def existing_states(self, user_ids: Iterable[str], model_version: int) -> set[str]:
        """The users among ``user_ids`` that have a state under ``model_version``."""
        found: set[str] = set()
        for chunk in chunked(set(user_ids)):
            statement = select(_STATES.c.user_id).where(
                _STATES.c.model_version == model_version, _STATES.c.user_id.in_(chunk)
            )
            found.update(self._connection.scalars(statement))
        return found

    def insert_missing_states(self, profiles: Iterable[UserProfile]) -> set[str]:
        """Insert each profile's state unless its user already has one under that version;
        return the users inserted. A concurrent insert of the same user waits for the other
        transaction and then loses, so exactly one writer adds a user's contributions."""
        now, token = self._clock(), new_state_token()
        rows = sorted(
            (user_state_row(profile, now, token) for profile in profiles),
            key=lambda row: (row["model_version"], row["user_id"]),
        )
        if not rows:
            return set()
        users = [
            {"user_id": profile_row["user_id"], "attributes": {}, "updated_at": now}
            for profile_row in rows
        ]
        # The state's foreign key needs the user row; existing ones (and their demographics)
        # are left alone.
        upsert(self._connection, _USERS, users, key=("user_id",))
        key = ["model_version", "user_id"]
        if self._connection.dialect.name == "postgresql":
            # One statement with one array per column, as the shared upsert sends rows: a
            # multi-row VALUES of this size costs more to compile than to run.
            columns = list(rows[0])
            statement = (
                postgresql.insert(_STATES)
                .from_select(columns, unnest_select(_STATES, columns))
                .on_conflict_do_nothing(index_elements=key)
                .returning(_STATES.c.user_id)
            )
            parameters = {
                array_parameter_name(column): column_array_values(_STATES, column, rows)
                for column in columns
            }
            return set(self._connection.scalars(statement, parameters))
        inserted: set[str] = set()
        for chunk in chunked(rows, size=STATE_INSERT_CHUNK):
            sqlite_statement = (
                sqlite.insert(_STATES)
                .values(chunk)
                .on_conflict_do_nothing(index_elements=key)
                .returning(_STATES.c.user_id)
            )
            inserted.update(self._connection.scalars(sqlite_statement))
        return inserted

    def count_users_with_interactions(self) -> int:
        """Users a rebuild will visit (one pass over the interactions' key index)."""
        statement = select(func.count(func.distinct(_INTERACTIONS.c.user_id)))
        return self._connection.scalar(statement) or 0

    def start_rebuild(self, model_version: int, users_total: int) -> RebuildProgress:
        """The progress of ``model_version``'s rebuild, recorded now if it never started."""
        now = self._clock()
        values = {
            "model_version": model_version,
            "users_total": users_total,
            "users_done": 0,
            "users_built": 0,
            "cursor": None,
            "started_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        upsert(self._connection, _REBUILDS, [values], key=("model_version",))
        progress = self.rebuild_progress(model_version)
        assert progress is not None  # inserted just above, or there already
        return progress

    def rebuild_progress(self, model_version: int) -> RebuildProgress | None:
        statement = select(_REBUILDS).where(_REBUILDS.c.model_version == model_version)
        row = self._connection.execute(statement).first()
        return None if row is None else _progress_from(row)

    def advance_rebuild(self, model_version: int, cursor: str, users_done: int, built: int) -> None:
        """Record a committed chunk: ``users_done`` more users up to ``cursor``, ``built`` of
        them built by the rebuild."""
        statement = (
            update(_REBUILDS)
            .where(_REBUILDS.c.model_version == model_version)
            .values(
                cursor=cursor,
                users_done=_REBUILDS.c.users_done + users_done,
                users_built=_REBUILDS.c.users_built + built,
                updated_at=self._clock(),
            )
        )
        self._connection.execute(statement)

    def finish_rebuild(self, model_version: int) -> None:
        now = self._clock()
        statement = (
            update(_REBUILDS)
            .where(_REBUILDS.c.model_version == model_version)
            .values(finished_at=now, updated_at=now)
        )
        self._connection.execute(statement)

    def forget_rebuild(self, model_version: int) -> None:
        """Drop the progress record, so the next rebuild of this version starts over."""
        statement = delete(_REBUILDS).where(_REBUILDS.c.model_version == model_version)
        self._connection.execute(statement)

    def database_time(self) -> datetime | None:
        """The PostgreSQL server's clock; None on SQLite, whose writers are serialised, so
        no transaction can be in flight beside the one that changed a version's status."""
        if self._connection.dialect.name != "postgresql":
            return None
        return self._connection.scalar(select(func.clock_timestamp()))

    def transactions_older_than(self, moment: datetime) -> int:
        """How many other client transactions of this database began before ``moment``
        (PostgreSQL). A rebuild waits for them: they may have read the version statuses
        before its version was marked as building."""
        statement = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND xact_start < :moment"
        ).bindparams(moment=moment)
        return int(self._connection.scalar(statement) or 0)


class TrainingSampleRepository(Repository):
    """Users for a training run, found through indexes, so the cost of finding them does not
    grow with the number of users stored."""

    def make_read_only(self) -> None:
        """Declare the current transaction read-only (PostgreSQL; call before any query).
        Reads never block the consumers' writes there; on SQLite keep transactions short."""
        if self._connection.dialect.name == "postgresql":
            self._connection.execute(text("SET TRANSACTION READ ONLY"))

    def recently_active_users(self, count: int, exclude: Iterable[str] = ()) -> list[str]:
        """Up to ``count`` users with the most recently written interactions, newest first."""
        excluded = set(exclude)
        found: dict[str, None] = {}
        rows_read = 0
        limit = max(4 * count, 64)
        while len(found) < count:
            statement = (
                # No tie-breaker: one bulk load writes millions of rows at the same time, and
                # sorting a tie that large would read them all.
                select(_INTERACTIONS.c.user_id)
                .order_by(_INTERACTIONS.c.updated_at.desc())
                .offset(rows_read)
                .limit(limit)
            )
            page = list(self._connection.scalars(statement))
            for user_id in page:
                if user_id not in excluded:
                    found.setdefault(user_id)
            rows_read += len(page)
            if len(page) < limit:
                break
            limit *= 2
        return list(found)[:count]

    def random_users(
        self,
        count: int,
        generator: np.random.Generator,
        exclude: Iterable[str] = (),
        users_per_seek: int = 16,
    ) -> list[str]:
        """About ``count`` users at random: each seek jumps to a random key between the
        smallest and the largest user id (``random_key``) and takes the next
        ``users_per_seek`` ids. Not exactly uniform (users after a gap in the id space are
        likelier), but spread over the whole population; every seek is one index lookup."""
        excluded = set(exclude)
        low, high = self._connection.execute(
            select(func.min(_INTERACTIONS.c.user_id), func.max(_INTERACTIONS.c.user_id))
        ).one()
        if low is None:
            return []
        found: dict[str, None] = {}
        # Enough seeks for the count, and a bound when the table holds fewer users.
        for _ in range(4 * max(1, -(-count // users_per_seek)) + 4):
            seeked = self._ids_from(random_key(low, high, generator), users_per_seek)
            if len(seeked) < users_per_seek:
                # The seek ran into the end of the index: go on from its start.
                seeked += self._ids_from(low, users_per_seek - len(seeked))
            for user_id in seeked:
                if user_id not in excluded:
                    found.setdefault(user_id)
            if len(found) >= count:
                break
        return list(found)[:count]

    def _ids_from(self, key: str, limit: int) -> list[str]:
        """Up to ``limit`` user ids from ``key`` on, in index order."""
        statement = (
            select(_INTERACTIONS.c.user_id)
            .distinct()
            .where(_INTERACTIONS.c.user_id >= key)
            .order_by(_INTERACTIONS.c.user_id)
            .limit(limit)
        )
        return list(self._connection.scalars(statement))


class RunLogRepository(Repository):
    """What the shared training-run repository does not answer: which runs never ended."""

    def unfinished(self) -> list[int]:
        """Ids of runs without an outcome, oldest first. Under the run lock, these are runs
        whose process died."""
        statement = select(_RUNS.c.id).where(_RUNS.c.outcome.is_(None)).order_by(_RUNS.c.id)
        return list(self._connection.scalars(statement))


def random_key(low: str, high: str, generator: np.random.Generator) -> str:
    """A random string between ``low`` and ``high`` (inclusive) to seek to: their common
    prefix, then a random length of random characters from the range the two ids use after
    it. Ids numbered in sequence ("u1" ... "u99999") get keys spread over their whole range,
    not bunched where code points are plentiful.

    >>> random = np.random.default_rng(0)
    >>> keys = [random_key("u1", "u99999", random) for _ in range(1_000)]
    >>> all("u1" <= key <= "u99999" for key in keys), len({key[:3] for key in keys}) > 50
    (True, True)
    >>> random_key("same", "same", random)
    'same'
    """
    if low >= high:
        return low
    prefix = _common_prefix(low, high)
    rest = low[len(prefix) :] + high[len(prefix) :]
    first, last = ord(min(rest)), ord(max(rest))
    length = int(generator.integers(len(prefix) + 1, max(len(low), len(high)) + 1))
    codes = generator.integers(first, last + 1, size=length - len(prefix))
    key = prefix + "".join(_printable(int(code)) for code in codes)
    return min(max(key, low), high)


def _common_prefix(first: str, second: str) -> str:
    length = 0
    for left, right in zip(first, second, strict=False):
        if left != right:
            break
        length += 1
    return first[:length]


def _printable(code_point: int) -> str:
    # Surrogates cannot be encoded, so no database accepts them in a string.
    return chr(_SURROGATES.stop if code_point in _SURROGATES else code_point)


def _progress_from(row: SqlRow[Any]) -> RebuildProgress:
    return RebuildProgress(**row._asdict())
