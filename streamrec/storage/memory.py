"""An in-memory SQLite database with the full schema: for examples, doctests and experiments
that need no file. Its schema comes from the table declarations, which a test keeps equal to
the migrations.

>>> from streamrec.storage.unit_of_work import UnitOfWork
>>> with UnitOfWork(create_memory_database()) as uow:
...     uow.offsets.get("group", "interactions")
{}
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool

from streamrec.storage.database import create_database_engine
from streamrec.storage.tables import Base


def create_memory_database() -> Engine:
    # One shared connection: every new connection to ":memory:" would be a new empty database.
    engine = create_database_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    return engine
