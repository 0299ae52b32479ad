"""Items' visible features: the catalogue as the item events describe it.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     _ = uow.items.save_many([ItemEvent("i1", 2.0, "Heat", {"genres": ("crime",)}, {})])
...     uow.items.get_many(["i1", "missing"])["i1"].categorical
{'genres': ('crime',)}
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from streamrec.events import ItemEvent
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import chunked, is_one_of, upsert
from streamrec.storage.tables import ItemRow, table_of

_ITEMS = table_of(ItemRow)


class ItemRepository(Repository):
    def save_many(self, items: Iterable[ItemEvent]) -> int:
        """Upsert each item's features. An item event states the item's full features; the
        one with the latest timestamp wins, whatever order events arrive in."""
        now = self._clock()
        rows = [
            {
                "item_id": item.item_id,
                "title": item.title,
                "categorical": {name: list(values) for name, values in item.categorical.items()},
                "numeric": dict(item.numeric),
                "event_timestamp": item.timestamp,
                "updated_at": now,
            }
            for item in items
        ]
        replaced = ("title", "categorical", "numeric", "event_timestamp", "updated_at")
        return upsert(
            self._connection,
            _ITEMS,
            rows,
            key=("item_id",),
            replace=replaced,
            newest_by="event_timestamp",
        )

    def get_many(self, item_ids: Iterable[str]) -> dict[str, ItemEvent]:
        """The stored items among ``item_ids``; unknown ids are absent."""
        found: dict[str, ItemEvent] = {}
        for chunk in chunked(set(item_ids)):
            statement = select(_ITEMS).where(is_one_of(self._connection, _ITEMS.c.item_id, chunk))
            for row in self._connection.execute(statement):
                found[row.item_id] = ItemEvent(
                    item_id=row.item_id,
                    timestamp=row.event_timestamp,
                    title=row.title,
                    categorical={name: tuple(values) for name, values in row.categorical.items()},
                    numeric=dict(row.numeric),
                )
        return found

    def count(self) -> int:
        return self._connection.scalar(select(func.count()).select_from(_ITEMS)) or 0

    def ids(self) -> list[str]:
        """Every stored item id, sorted."""
        statement = select(_ITEMS.c.item_id).order_by(_ITEMS.c.item_id)
        return list(self._connection.scalars(statement))
