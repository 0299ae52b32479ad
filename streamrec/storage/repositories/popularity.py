"""Decayed item popularity: the new-user fallback and a candidate source are read from it.

Each item keeps the log2 of its forward-decayed sum (``model.decayed_popularity``). A
batch's values are combined with the stored ones in the database by a log-sum-exp, never
read-modified-written: the combination is commutative and associative, so consumers on
different partitions may add theirs concurrently, in any order. A batch is one statement;
the most popular items are read in order from an index on the score.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     for _ in range(2):
...         written = uow.popularity.add(["a", "b"], [3.0, 1.0])
...     uow.popularity.most_popular(5)
[('a', 4.0), ('b', 2.0)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from streamrec.storage.errors import InvalidRecordError, UnsupportedDatabaseError
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import array_literal, array_parameter_name, unnest_select
from streamrec.storage.tables import ItemPopularityRow, table_of

_POPULARITY = table_of(ItemPopularityRow)
_COLUMNS = ("item_id", "log_score")


class PopularityRepository(Repository):
    def add(self, item_ids: Sequence[str], log_scores: Sequence[float]) -> int:
        """Combine ``log_scores[k]`` into item ``item_ids[k]``'s score (log2 of the sum of
        both sums); the items are unique and sorted
        (``model.decayed_popularity.popularity_increments``). One statement; returns the
        number of rows written."""
        if not item_ids:
            return 0
        if any(not math.isfinite(score) for score in log_scores):
            raise InvalidRecordError("popularity scores with a value that is not finite")
        dialect = self._connection.dialect.name
        parameters: Any
        if dialect == "postgresql":
            insert = postgresql.insert(_POPULARITY).from_select(
                list(_COLUMNS), unnest_select(_POPULARITY, _COLUMNS)
            )
            parameters = {
                array_parameter_name("item_id"): array_literal(list(item_ids)),
                array_parameter_name("log_score"): array_literal(
                    [float(score) for score in log_scores]
                ),
            }
        elif dialect == "sqlite":
            insert = sqlite.insert(_POPULARITY)
            parameters = [
                {"item_id": item_id, "log_score": float(score)}
                for item_id, score in zip(item_ids, log_scores, strict=True)
            ]
        else:
            raise UnsupportedDatabaseError(
                f"unsupported database {dialect!r}: use postgresql or sqlite"
            )
        statement = insert.on_conflict_do_update(
            index_elements=["item_id"],
            set_={
                "log_score": _log2_sum(dialect, _POPULARITY.c.log_score, insert.excluded.log_score)
            },
        )
        self._connection.execute(statement, parameters)
        return len(item_ids)

    def most_popular(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` items of largest score with their scores, largest first, ties by
        item id."""
        if count <= 0:
            return []
        table = _POPULARITY.c
        statement = (
            select(table.item_id, table.log_score)
            .order_by(table.log_score.desc(), table.item_id)
            .limit(count)
        )
        return [(item_id, score) for item_id, score in self._connection.execute(statement)]


def _log2_sum(
    dialect: str, first: ColumnElement[float], second: ColumnElement[float]
) -> ColumnElement[float]:
    """log2(2^first + 2^second) in SQL, as ``model.decayed_popularity.log2_sum`` computes
    it: larger + ln(1 + e^((smaller - larger) ln 2)) / ln 2."""
    larger_of, smaller_of = (
        (func.greatest, func.least)
        if dialect == "postgresql"
        else (
            func.max,
            func.min,
        )
    )
    larger, smaller = larger_of(first, second), smaller_of(first, second)
    ln2 = literal(math.log(2.0))
    return larger + func.ln(1.0 + func.exp((smaller - larger) * ln2)) / ln2


__all__ = ["PopularityRepository"]
