"""Item co-occurrence counts: what the item neighbours are read from.

Counts are added in the database (``pair_count = pair_count + delta``), never
read-modified-written, so consumers on different partitions may add theirs concurrently.
A batch's counts go in one statement; an item's neighbours are read in order from an index,
at most ``count`` per item, so a read costs the items asked times ``count`` whatever the
catalogue.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     for _ in range(2):
...         written = uow.cooccurrences.add(
...             ["a", "a", "a", "b"], ["a", "b", "c", "a"], [1.0, 2.0, 1.0, 2.0])
...     uow.cooccurrences.neighbours(["a", "x"], 5), uow.cooccurrences.popularity(["a", "b"])
({'a': [('b', 4.0), ('c', 2.0)]}, {'a': 2.0})
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    Text,
    cast,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql

from streamrec.storage.errors import InvalidRecordError
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import array_literal, chunked, is_one_of, upsert_columns
from streamrec.storage.tables import ItemCooccurrenceRow, table_of

_COOCCURRENCE = table_of(ItemCooccurrenceRow)
# Below SQLite's limit of 500 terms in a compound SELECT.
_ITEMS_PER_STATEMENT = 100

Neighbours = dict[str, list[tuple[str, float]]]


class CooccurrenceRepository(Repository):
    def add(
        self, item_ids: Sequence[str], other_item_ids: Sequence[str], counts: Sequence[float]
    ) -> int:
        """Add ``counts[k]`` to the pair (``item_ids[k]``, ``other_item_ids[k]``); the pairs
        are unique and sorted (``model.item_neighbours.cooccurrence_increments``). One
        statement; returns the number of rows written."""
        if any(count != count or count in (float("inf"), float("-inf")) for count in counts):
            raise InvalidRecordError("co-occurrence counts with a value that is not finite")
        return upsert_columns(
            self._connection,
            _COOCCURRENCE,
            {
                "item_id": list(item_ids),
                "other_item_id": list(other_item_ids),
                "pair_count": [float(count) for count in counts],
            },
            key=("item_id", "other_item_id"),
            add=("pair_count",),
        )

    def neighbours(self, item_ids: Collection[str], count: int) -> Neighbours:
        """Each item's ``count`` other items of largest count, largest first, ties by item
        id (items without any are absent)."""
        wanted = sorted(set(item_ids))
        if not wanted or count <= 0:
            return {}
        found: Neighbours = {}
        if self._connection.dialect.name == "postgresql":
            rows = self._connection.execute(_lateral_neighbours(wanted, count))
        else:
            rows = (
                row
                for group in chunked(wanted, _ITEMS_PER_STATEMENT)
                for row in self._connection.execute(_union_neighbours(group, count))
            )
        for item_id, other, pair_count in rows:
            found.setdefault(item_id, []).append((other, pair_count))
        for pairs in found.values():
            pairs.sort(key=lambda pair: (-pair[1], pair[0]))
        return found

    def popularity(self, item_ids: Collection[str]) -> dict[str, float]:
        """How many users have each item: its count with itself (absent: none)."""
        table = _COOCCURRENCE.c
        popularity: dict[str, float] = {}
        for group in chunked(sorted(set(item_ids))):
            statement = select(table.item_id, table.pair_count).where(
                is_one_of(self._connection, table.item_id, group),
                table.other_item_id == table.item_id,
            )
            popularity.update(
                {item_id: count for item_id, count in self._connection.execute(statement)}
            )
        return popularity


def _ordered_neighbours(item_id: str | ColumnElement[str], count: int) -> Select[Any]:
    """The ``count`` other items of largest count of ``item_id`` (a value or a column)."""
    table = _COOCCURRENCE.c
    return (
        select(table.item_id, table.other_item_id, table.pair_count)
        .where(table.item_id == item_id, table.other_item_id != table.item_id)
        .order_by(table.pair_count.desc(), table.other_item_id)
        .limit(count)
    )


def _lateral_neighbours(item_ids: Sequence[str], count: int) -> Select[Any]:
    """PostgreSQL: the wanted ids unnested from one bound array, each joined with its top
    ``count`` pairs read in order from the index (one statement for any number of items)."""
    as_array = cast(literal(array_literal(item_ids), Text()), postgresql.ARRAY(String()))
    wanted = select(func.unnest(as_array).label("wanted_id")).subquery("wanted")
    top = _ordered_neighbours(wanted.c.wanted_id, count).lateral("top")
    return select(top.c.item_id, top.c.other_item_id, top.c.pair_count).select_from(
        wanted.join(top, true())
    )


def _union_neighbours(item_ids: Sequence[str], count: int) -> CompoundSelect:
    """SQLite: one ordered, limited part per item, kept apart by a UNION ALL."""
    parts = [_ordered_neighbours(item_id, count).subquery() for item_id in item_ids]
    return union_all(*(select(part) for part in parts))


__all__ = ["CooccurrenceRepository"]
