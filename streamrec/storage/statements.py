"""The set-based statements every repository shares: one upsert helper and chunked IN lookups.

An upsert is one ``INSERT ... ON CONFLICT DO UPDATE`` for a whole batch. On PostgreSQL the rows
travel as one array per column, unnested by the server: a single statement, about twice as
fast as an executemany, which psycopg runs row by row. SQLite, in process, gets an
executemany. Rows are first merged by key, because one PostgreSQL statement may not touch a
row twice, and sorted by key, so that concurrent writers lock rows in the same order and
cannot deadlock each other.

>>> merge_by_key([{"k": 1, "n": 1.0}, {"k": 1, "n": 2.0}], key=("k",), add=("n",))
[{'k': 1, 'n': 3.0}]
>>> list(chunked([1, 2, 3], 2))
[[1, 2], [3]]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from streamrec.storage.errors import UnsupportedDatabaseError

# Well below PostgreSQL's 65,535 and SQLite's 32,766 bound parameters per statement.
LOOKUP_CHUNK_SIZE = 5_000

Row = dict[str, Any]
Element = TypeVar("Element")


def chunked(values: Iterable[Element], size: int = LOOKUP_CHUNK_SIZE) -> Iterator[list[Element]]:
    chunk: list[Element] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def merge_by_key(
    rows: Iterable[Row],
    *,
    key: Sequence[str],
    add: Sequence[str] = (),
    newest_by: str | None = None,
) -> list[Row]:
    """One row per key, sorted by key: ``add`` columns summed, other columns from the last
    row, or from the row with the largest ``newest_by`` value when that is given."""
    merged: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        row_key = tuple(row[column] for column in key)
        earlier = merged.get(row_key)
        if earlier is None:
            merged[row_key] = dict(row)
        elif add:
            for column in add:
                earlier[column] += row[column]
        elif newest_by is None or row[newest_by] >= earlier[newest_by]:
            merged[row_key] = dict(row)
    return [merged[row_key] for row_key in sorted(merged)]


def upsert(
    connection: Connection,
    table: Table,
    rows: Iterable[Row],
    *,
    key: Sequence[str],
    replace: Sequence[str] = (),
    add: Sequence[str] = (),
    newest_by: str | None = None,
) -> int:
    """Insert ``rows``; on a key conflict overwrite ``replace`` columns and add ``add`` columns
    to the stored values (``column = column + excluded.column``, so concurrent writers
    commute). With ``newest_by``, a conflicting row wins only if its value in that column is
    not older than the stored one. Neither ``replace`` nor ``add``: existing rows are kept.
    Returns the number of distinct keys written."""
    if add and (replace or newest_by):
        raise ValueError("an upsert either adds to columns or replaces them, not both")
    merged = merge_by_key(rows, key=key, add=add, newest_by=newest_by)
    if not merged:
        return 0
    columns = list(merged[0])
    dialect = connection.dialect.name
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).from_select(columns, unnest_select(table, columns))
        parameters: Any = {
            array_parameter_name(column): column_array_values(table, column, merged)
            for column in columns
        }
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
        parameters = merged
    else:
        raise UnsupportedDatabaseError(
            f"unsupported database {dialect!r}: use postgresql or sqlite"
        )
    excluded = statement.excluded
    if not (replace or add):
        statement = statement.on_conflict_do_nothing(index_elements=list(key))
    else:
        updates: dict[str, ColumnElement[Any]] = {column: excluded[column] for column in replace}
        updates.update({column: table.c[column] + excluded[column] for column in add})
        statement = statement.on_conflict_do_update(
            index_elements=list(key),
            set_=updates,
            where=None if newest_by is None else table.c[newest_by] <= excluded[newest_by],
        )
    connection.execute(statement, parameters)
    return len(merged)


def array_parameter_name(column: str) -> str:
    """The bound parameter that carries ``column``'s values in an ``unnest_select``."""
    return f"{column}_values"


def _is_json(table: Table, column: str) -> bool:
    return isinstance(table.c[column].type, JSON)


def column_array_values(table: Table, column: str, rows: list[Row]) -> list[Any]:
    """``column``'s value of every row, as the array bound to ``array_parameter_name``."""
    values = [row[column] for row in rows]
    if _is_json(table, column):
        # An array of JSON lists would be read as a multi-dimensional array: send text.
        return [None if value is None else json.dumps(value) for value in values]
    return values


def unnest_select(table: Table, columns: Sequence[str]) -> Select[Any]:
    """SELECT * FROM unnest(:a::type[], :b::type[], ...): one row per array position."""
    arrays = [
        bindparam(
            array_parameter_name(column),
            type_=postgresql.ARRAY(Text() if _is_json(table, column) else table.c[column].type),
        )
        for column in columns
    ]
    unnested = func.unnest(*arrays).table_valued(*columns).render_derived()
    return select(
        *(
            cast(unnested.c[column], JSON) if _is_json(table, column) else unnested.c[column]
            for column in columns
        )
    )
