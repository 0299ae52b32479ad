"""Interactions: the latest preference of each user for each item.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     _ = uow.interactions.save_many([Interaction("u1", "i1", 0.5, "e1", "click", 10.0)])
...     uow.interactions.for_users(["u1"])["u1"][0].weight
0.5
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row as SqlRow
from sqlalchemy import func, select, tuple_

from streamrec.state import Interaction
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import chunked, is_one_of, upsert
from streamrec.storage.tables import InteractionRow, table_of

_INTERACTIONS = table_of(InteractionRow)
_INTERACTION_FIELDS = (
    _INTERACTIONS.c.user_id,
    _INTERACTIONS.c.item_id,
    _INTERACTIONS.c.weight,
    _INTERACTIONS.c.event_id,
    _INTERACTIONS.c.event_type,
    _INTERACTIONS.c.event_timestamp,
)
UserItem = tuple[str, str]


class InteractionRepository(Repository):
    def get_many(self, pairs: Iterable[UserItem]) -> dict[UserItem, Interaction]:
        """The stored interactions among the (user_id, item_id) ``pairs``."""
        found: dict[UserItem, Interaction] = {}
        key = tuple_(_INTERACTIONS.c.user_id, _INTERACTIONS.c.item_id)
        # Half the chunk size: each pair takes two bound parameters.
        for chunk in chunked(set(pairs), size=2_500):
            statement = select(_INTERACTIONS).where(key.in_(chunk))
            for row in self._connection.execute(statement):
                found[(row.user_id, row.item_id)] = _interaction_from(row)
        return found

    def for_users(self, user_ids: Iterable[str]) -> dict[str, list[Interaction]]:
        """Every stored interaction of the users among ``user_ids`` that have any, by item id."""
        found: dict[str, list[Interaction]] = defaultdict(list)
        for chunk in chunked(set(user_ids)):
            # The columns in Interaction's field order: a consumer batch reads thousands of
            # rows here, and building each one positionally is the cheapest way.
            statement = (
                select(*_INTERACTION_FIELDS)
                .where(is_one_of(self._connection, _INTERACTIONS.c.user_id, chunk))
                .order_by(_INTERACTIONS.c.user_id, _INTERACTIONS.c.item_id)
            )
            for row in self._connection.execute(statement):
                found[row[0]].append(Interaction(*row))
        return dict(found)

    def save_many(self, interactions: Iterable[Interaction]) -> int:
        """Upsert: each (user, item) keeps the last of ``interactions`` given for it, which
        replaces the stored one. Order is the caller's to decide, as it computes the deltas."""
        now = self._clock()
        rows = [
            {
                "user_id": interaction.user_id,
                "item_id": interaction.item_id,
                "weight": float(interaction.weight),
                "event_id": interaction.event_id,
                "event_type": interaction.event_type,
                "event_timestamp": float(interaction.timestamp),
                "updated_at": now,
            }
            for interaction in interactions
        ]
        replaced = ("weight", "event_id", "event_type", "event_timestamp", "updated_at")
        return upsert(
            self._connection, _INTERACTIONS, rows, key=("user_id", "item_id"), replace=replaced
        )

    def user_ids(self, *, after: str | None = None, limit: int = 1_000) -> list[str]:
        """Up to ``limit`` ids of users with interactions, greater than ``after``, sorted."""
        statement = (
            select(_INTERACTIONS.c.user_id)
            .distinct()
            .order_by(_INTERACTIONS.c.user_id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(_INTERACTIONS.c.user_id > after)
        return list(self._connection.scalars(statement))

    def count(self, *, updated_after: float | None = None) -> int:
        """How many (user, item) interactions are stored, optionally only those written after
        ``updated_after`` (the trainer skips a run when too few are new)."""
        statement = select(func.count()).select_from(_INTERACTIONS)
        if updated_after is not None:
            statement = statement.where(_INTERACTIONS.c.updated_at > updated_after)
        return self._connection.scalar(statement) or 0


def _interaction_from(row: SqlRow[Any]) -> Interaction:
    return Interaction(
        user_id=row.user_id,
        item_id=row.item_id,
        weight=row.weight,
        event_id=row.event_id,
        event_type=row.event_type,
        timestamp=row.event_timestamp,
    )
