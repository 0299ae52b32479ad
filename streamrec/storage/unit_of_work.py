"""The unit of work: one connection, one transaction, every repository.

Nothing is kept unless ``commit()`` is called; leaving the block discards whatever was not
committed, whether by an exception or by forgetting. After a commit the same unit of work may
go on with a new transaction.

>>> from streamrec.storage.memory import create_memory_database
>>> engine = create_memory_database()
>>> with UnitOfWork(engine) as uow:
...     uow.offsets.save("consumers", "interactions", {0: 5})
>>> with UnitOfWork(engine) as uow:
...     uow.offsets.get("consumers", "interactions")
{}
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from streamrec.storage.database import describe_failure
from streamrec.storage.errors import DatabaseUnavailableError
from streamrec.storage.repositories import (
    ClusterRepository,
    CooccurrenceRepository,
    DeadLetterRepository,
    InteractionRepository,
    ItemRepository,
    ModelRepository,
    OffsetRepository,
    PopularityRepository,
    ProcessedEventRepository,
    TrainingRunRepository,
    UserRepository,
)
from streamrec.storage.repositories.base import Clock
from streamrec.storage.repositories.catalogue import CatalogueRepository
from streamrec.storage.trainer import (
    ModelBuildRepository,
    RunLogRepository,
    TrainingSampleRepository,
)


class UnitOfWork:
    """``with UnitOfWork(engine) as uow: ...; uow.commit()``. ``clock`` stamps ``updated_at``
    and friends (seconds since the epoch)."""

    items: ItemRepository
    users: UserRepository
    interactions: InteractionRepository
    clusters: ClusterRepository
    cooccurrences: CooccurrenceRepository
    popularity: PopularityRepository
    models: ModelRepository
    offsets: OffsetRepository
    dead_letters: DeadLetterRepository
    processed_events: ProcessedEventRepository
    training_runs: TrainingRunRepository
    builds: ModelBuildRepository
    samples: TrainingSampleRepository
    run_log: RunLogRepository
    catalogue: CatalogueRepository

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._connection: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in use")
        try:
            connection = self._engine.connect()
        except DBAPIError as error:
            raise DatabaseUnavailableError(describe_failure(self._engine.url, error)) from None
        self._connection = connection
        self.items = ItemRepository(connection, self._clock)
        self.users = UserRepository(connection, self._clock)
        self.interactions = InteractionRepository(connection, self._clock)
        self.clusters = ClusterRepository(connection, self._clock)
        self.cooccurrences = CooccurrenceRepository(connection, self._clock)
        self.popularity = PopularityRepository(connection, self._clock)
        self.models = ModelRepository(connection, self._clock)
        self.offsets = OffsetRepository(connection, self._clock)
        self.dead_letters = DeadLetterRepository(connection, self._clock)
        self.processed_events = ProcessedEventRepository(connection, self._clock)
        self.training_runs = TrainingRunRepository(connection, self._clock)
        self.builds = ModelBuildRepository(connection, self._clock)
        self.samples = TrainingSampleRepository(connection, self._clock)
        self.run_log = RunLogRepository(connection, self._clock)
        self.catalogue = CatalogueRepository(connection, self._clock)
        return self

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._require_connection(), None
        try:
            connection.rollback()
        finally:
            connection.close()

    def commit(self) -> None:
        self._require_connection().commit()

    @contextmanager
    def overlapped_writes(self) -> Iterator[None]:
        """Statements inside the block are sent without waiting for their results, so the
        database runs them while the Python code inside goes on (PostgreSQL's pipeline mode,
        psycopg's ``Connection.pipeline``); leaving the block waits for them all and raises
        the first error. Only writes whose results nothing reads belong inside: a statement
        that returns rows fails there. On SQLite, in process, and with a PostgreSQL driver
        without pipeline mode (psycopg 3 has it with libpq 14 or later), they run as usual.

        >>> from streamrec.storage.memory import create_memory_database
        >>> with UnitOfWork(create_memory_database()) as uow:
        ...     with uow.overlapped_writes():
        ...         uow.offsets.save("consumers", "interactions", {0: 5})
        ...     uow.offsets.get("consumers", "interactions")
        {0: 5}
        """
        connection = self._require_connection()
        dialect = connection.dialect
        pipeline = getattr(dialect.loaded_dbapi, "Pipeline", None)
        if dialect.name != "postgresql" or pipeline is None or not pipeline.is_supported():
            yield
            return
        driver_connection = connection.connection.driver_connection
        try:
            with driver_connection.pipeline():
                yield
        except dialect.loaded_dbapi.Error as error:
            # Raised while the block waited for its statements, outside SQLAlchemy: wrapped
            # as SQLAlchemy wraps driver errors (callers retry its OperationalError), and the
            # connection dropped from the pool if it is gone.
            gone = dialect.is_disconnect(error, driver_connection, None)
            if gone:
                connection.invalidate(error)
            raise DBAPIError.instance(
                None, None, error, dialect.loaded_dbapi.Error, connection_invalidated=gone
            ) from error

    def rollback(self) -> None:
        self._require_connection().rollback()

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside a `with` block")
        return self._connection
