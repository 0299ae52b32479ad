"""Dead letters: rejected input, kept byte for byte, counted by reason.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     _ = uow.dead_letters.add_many([DeadLetter("interactions", b"{", "invalid_json")])
...     uow.dead_letters.counts_by_reason()
{'invalid_json': 1}
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, insert, select

from streamrec.storage.records import DeadLetter
from streamrec.storage.repositories.base import Repository
from streamrec.storage.tables import DeadLetterRow, table_of

_DEAD_LETTERS = table_of(DeadLetterRow)
_STORED_COLUMNS = (
    "received_at",
    "source_topic",
    "source_partition",
    "source_offset",
    "key",
    "payload",
    "reason",
    "detail",
)


class DeadLetterRepository(Repository):
    def add_many(self, letters: Iterable[DeadLetter]) -> int:
        """Store each letter (its ``id`` is ignored: the database assigns one)."""
        now = self._clock()
        rows = [
            {
                **{column: getattr(letter, column) for column in _STORED_COLUMNS},
                "received_at": now if letter.received_at is None else letter.received_at,
            }
            for letter in letters
        ]
        if rows:
            self._connection.execute(insert(_DEAD_LETTERS), rows)
        return len(rows)

    def counts_by_reason(self) -> dict[str, int]:
        statement = select(_DEAD_LETTERS.c.reason, func.count()).group_by(_DEAD_LETTERS.c.reason)
        return {reason: count for reason, count in self._connection.execute(statement)}

    def recent(self, limit: int = 100, reason: str | None = None) -> list[DeadLetter]:
        """The latest ``limit`` letters, newest first, optionally of one reason only."""
        statement = select(_DEAD_LETTERS).order_by(_DEAD_LETTERS.c.id.desc()).limit(limit)
        if reason is not None:
            statement = statement.where(_DEAD_LETTERS.c.reason == reason)
        return [DeadLetter(**row._asdict()) for row in self._connection.execute(statement)]
