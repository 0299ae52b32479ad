"""Read-only browsing for people: pages of items (optionally by title), of users, and when the
consumers last stored offsets. The pipeline never calls these; ``streamrec serve`` does.

Pages are keyset pages (``after`` the last id of the previous page), so a page costs the
same however deep into the catalogue it is.

>>> from streamrec.events import ItemEvent
>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     _ = uow.items.save_many([ItemEvent("i1", 1.0, "Heat (1995)"), ItemEvent("i2", 1.0, "Up")])
...     [item.item_id for item in uow.catalogue.items_page(title_contains="heat")]
['i1']
"""

from __future__ import annotations

from sqlalchemy import func, select

from streamrec.events import ItemEvent
from streamrec.storage.repositories.base import Repository
from streamrec.storage.tables import ConsumerOffsetRow, InteractionRow, ItemRow, table_of

_ITEMS = table_of(ItemRow)
_INTERACTIONS = table_of(InteractionRow)
_OFFSETS = table_of(ConsumerOffsetRow)
# LIKE's wildcards and its escape character, escaped in a searched text.
_LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


class CatalogueRepository(Repository):
    def items_page(
        self, *, after: str | None = None, limit: int = 50, title_contains: str | None = None
    ) -> list[ItemEvent]:
        """Up to ``limit`` items with ids greater than ``after``, by id; with
        ``title_contains``, only those whose title contains it (case-insensitive)."""
        statement = select(_ITEMS).order_by(_ITEMS.c.item_id).limit(limit)
        if after is not None:
            statement = statement.where(_ITEMS.c.item_id > after)
        if title_contains:
            pattern = f"%{title_contains.lower().translate(_LIKE_SPECIAL)}%"
            statement = statement.where(func.lower(_ITEMS.c.title).like(pattern, escape="\\"))
        return [
            ItemEvent(
                item_id=row.item_id,
                timestamp=row.event_timestamp,
                title=row.title,
                categorical={name: tuple(values) for name, values in row.categorical.items()},
                numeric=dict(row.numeric),
            )
            for row in self._connection.execute(statement)
        ]

    def items_of_user(self, user_id: str) -> set[str]:
        """The ids of the items ``user_id`` has interactions with, read from the primary key
        alone (no row is built): what a recommendation leaves out."""
        statement = select(_INTERACTIONS.c.item_id).where(_INTERACTIONS.c.user_id == user_id)
        return set(self._connection.scalars(statement))

    def last_offsets_stored_at(self, consumer_group: str) -> float | None:
        """When the group's consumers last stored an offset (the end of their last batch),
        or None if they never did."""
        statement = select(func.max(_OFFSETS.c.updated_at)).where(
            _OFFSETS.c.consumer_group == consumer_group
        )
        return self._connection.scalar(statement)
