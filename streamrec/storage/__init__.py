"""The storage edge: the system of record in PostgreSQL (production) or SQLite (a first run).

Only this package speaks SQL. The domain sees repositories that take and return the types of
streamrec.state and streamrec.events, grouped in a unit of work that is one transaction:

>>> engine = create_memory_database()
>>> with UnitOfWork(engine) as uow:
...     uow.offsets.save("consumers", "interactions", {0: 42})
...     uow.commit()
>>> with UnitOfWork(engine) as uow:
...     uow.offsets.get("consumers", "interactions")
{0: 42}

The schema is created and migrated by Alembic (``streamrec db upgrade``).
"""

from streamrec.storage.database import check_connection, create_database_engine, masked_url
from streamrec.storage.errors import (
    ConcurrentActivationError,
    CorruptRecordError,
    DatabaseUnavailableError,
    InvalidRecordError,
    StorageError,
    UnknownModelVersionError,
    UnsupportedDatabaseError,
)
from streamrec.storage.memory import create_memory_database
from streamrec.storage.records import DeadLetter, TrainingRun, TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork

__all__ = [
    "ConcurrentActivationError",
    "CorruptRecordError",
    "DatabaseUnavailableError",
    "DeadLetter",
    "InvalidRecordError",
    "StorageError",
    "TrainingRun",
    "TrainingTrigger",
    "UnitOfWork",
    "UnknownModelVersionError",
    "UnsupportedDatabaseError",
    "check_connection",
    "create_database_engine",
    "create_memory_database",
    "masked_url",
]
