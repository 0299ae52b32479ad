"""Processed event ids: every accepted interaction event id still inside the deduplication
window, with the fingerprint of its content.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     _ = uow.processed_events.add_many([ProcessedEvent("e1", "ab12", "u1", "i1", 10.0)])
...     found = uow.processed_events.get_many(["e1", "e2"])
...     deleted = uow.processed_events.prune(received_before=20.0, limit=100)
...     sorted(found), found["e1"].fingerprint, deleted, uow.processed_events.count()
(['e1'], 'ab12', 1, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, String, Text, cast, delete, func, literal, select
from sqlalchemy.dialects import postgresql

from streamrec.storage.records import ProcessedEvent
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import array_literal, chunked, is_one_of, upsert_columns
from streamrec.storage.tables import ProcessedEventRow, table_of

_PROCESSED = table_of(ProcessedEventRow)
# The columns in ProcessedEvent's field order: rows are built positionally.
_PROCESSED_FIELDS = (
    _PROCESSED.c.event_id,
    _PROCESSED.c.fingerprint,
    _PROCESSED.c.user_id,
    _PROCESSED.c.item_id,
    _PROCESSED.c.received_at,
)


class ProcessedEventRepository(Repository):
    def get_many(self, event_ids: Iterable[str]) -> dict[str, ProcessedEvent]:
        """The stored events among ``event_ids``, by id: one statement per
        ``LOOKUP_CHUNK_SIZE`` ids (one for a consumer batch)."""
        found: dict[str, ProcessedEvent] = {}
        for chunk in chunked(set(event_ids)):
            for row in self._connection.execute(self._lookup(chunk)):
                found[row[0]] = ProcessedEvent(*row)
        return found

    def _lookup(self, event_ids: Sequence[str]) -> Select[Any]:
        if self._connection.dialect.name != "postgresql":
            return select(*_PROCESSED_FIELDS).where(
                is_one_of(self._connection, _PROCESSED.c.event_id, event_ids)
            )
        # Joined with the unnested ids rather than ``event_id = ANY(:ids)``: the table grows
        # with every batch and is often newer than its statistics, so the planner scans it,
        # and an array bound as a parameter is searched element by element for each row
        # (about 300 ms for 1,000 ids against 5,000 rows; the join takes a few).
        wanted = select(
            func.unnest(
                cast(literal(array_literal(event_ids), Text()), postgresql.ARRAY(String()))
            ).label("event_id")
        ).subquery()
        return select(*_PROCESSED_FIELDS).join(wanted, wanted.c.event_id == _PROCESSED.c.event_id)

    def add_many(self, events: Iterable[ProcessedEvent]) -> int:
        """Insert ``events`` (one per id) in one statement; an id already stored keeps its
        row (another consumer may have stored it since this one looked). Returns the number
        of ids."""
        # Sorted by id, so that consumers inserting overlapping ids lock them in one order;
        # bound column by column, as the ids are unique there is nothing to merge.
        rows = sorted(events)
        if len({row.event_id for row in rows}) != len(rows):
            raise ValueError("one processed event per id")
        columns = dict(
            zip(ProcessedEvent._fields, map(list, zip(*rows, strict=True)), strict=False)
        )
        return upsert_columns(self._connection, _PROCESSED, columns, key=("event_id",))

    def prune(self, *, received_before: float, limit: int) -> int:
        """Delete up to ``limit`` of the oldest events received before ``received_before``;
        return how many went. On PostgreSQL rows another transaction is deleting are skipped
        (``FOR UPDATE SKIP LOCKED``), so consumers pruning at once never wait for each
        other."""
        oldest = (
            select(_PROCESSED.c.event_id)
            .where(_PROCESSED.c.received_at < received_before)
            .order_by(_PROCESSED.c.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = delete(_PROCESSED).where(_PROCESSED.c.event_id.in_(oldest))
        return self._connection.execute(statement).rowcount

    def count(self) -> int:
        return self._connection.scalar(select(func.count()).select_from(_PROCESSED)) or 0
