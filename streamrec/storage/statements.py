"""The set-based statements every repository shares: one upsert helper and chunked lookups.

An upsert is one ``INSERT ... ON CONFLICT DO UPDATE`` for a whole batch. On PostgreSQL the rows
travel as one array per column, unnested by the server: a single statement, about twice as
fast as an executemany, which psycopg runs row by row. SQLite, in process, gets an
executemany. Rows are first merged by key, because one PostgreSQL statement may not touch a
row twice, and sorted by key, so that concurrent writers lock rows in the same order and
cannot deadlock each other. A lookup by many keys (``is_one_of``) binds its keys as one
array on PostgreSQL too.

>>> merge_by_key([{"k": 1, "n": 1.0}, {"k": 1, "n": 2.0}], key=("k",), add=("n",))
[{'k': 1, 'n': 3.0}]
>>> list(chunked([1, 2, 3], 2))
[[1, 2], [3]]
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal,
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


def is_one_of(
    connection: Connection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN values``, for a lookup by many keys (take them in ``chunked`` pieces).

    On PostgreSQL it is ``column = ANY(CAST(:text AS type[]))`` with ``values`` bound as one
    text parameter (``array_literal``): an IN list renders and binds one parameter per value,
    which cost several times the lookup (700 user ids: about 9 ms against 1.6 ms in a one-off
    timing loop). SQLite keeps the IN list.
    """
    if connection.dialect.name == "postgresql":
        as_array = cast(literal(array_literal(values), Text()), postgresql.ARRAY(column.type))
        return column == any_(as_array)
    return column.in_(values)


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
    parameters: Any
    if dialect == "postgresql":
        parameters = {
            array_parameter_name(column): column_array_values(table, column, merged)
            for column in columns
        }
    else:
        parameters = merged
    _execute_upsert(
        connection,
        table,
        columns,
        parameters,
        key=key,
        replace=replace,
        add=add,
        newest_by=newest_by,
    )
    return len(merged)


def upsert_columns(
    connection: Connection,
    table: Table,
    columns: dict[str, list[Any]],
    *,
    key: Sequence[str],
    add: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> int:
    """``upsert`` of rows given column by column (each list holds one value per row), for a
    caller whose rows are already unique by ``key`` and sorted by it: nothing is merged, and
    on PostgreSQL the lists are bound as the arrays as they are. JSON columns are not
    supported here. Returns the number of rows."""
    if add and replace:
        raise ValueError("an upsert either adds to columns or replaces them, not both")
    names = list(columns)
    count = len(columns[names[0]]) if names else 0
    if not count:
        return 0
    if any(len(values) != count for values in columns.values()):
        raise ValueError("every column needs one value per row")
    if any(_is_json(table, column) for column in names):
        raise ValueError("upsert_columns does not take JSON columns; use upsert")
    parameters: Any
    if connection.dialect.name == "postgresql":
        parameters = {
            array_parameter_name(column): array_literal(values)
            for column, values in columns.items()
        }
    else:
        rows = zip(*columns.values(), strict=True)
        parameters = [dict(zip(names, row, strict=True)) for row in rows]
    _execute_upsert(connection, table, names, parameters, key=key, replace=replace, add=add)
    return count


def _execute_upsert(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    parameters: Any,
    *,
    key: Sequence[str],
    replace: Sequence[str],
    add: Sequence[str],
    newest_by: str | None = None,
) -> None:
    """One INSERT ... ON CONFLICT of ``parameters``: arrays per column on PostgreSQL, a list
    of rows (executemany) on SQLite."""
    statement = _upsert_statement(
        connection.dialect.name,
        table,
        tuple(columns),
        key=tuple(key),
        replace=tuple(replace),
        add=tuple(add),
        newest_by=newest_by,
    )
    connection.execute(statement, parameters)


# Statements are immutable and depend only on these arguments, so each is built once: a
# consumer batch runs about seven upserts, and building one took ~0.4 ms of CPU of the
# ~0.6 ms its execution cost in Python (a one-off timing loop).
@functools.lru_cache(maxsize=128)
def _upsert_statement(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    *,
    key: tuple[str, ...],
    replace: tuple[str, ...],
    add: tuple[str, ...],
    newest_by: str | None,
) -> postgresql.Insert | sqlite.Insert:
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).from_select(
            list(columns), unnest_select(table, columns)
        )
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise UnsupportedDatabaseError(
            f"unsupported database {dialect!r}: use postgresql or sqlite"
        )
    excluded = statement.excluded
    if not (replace or add):
        return statement.on_conflict_do_nothing(index_elements=list(key))
    updates: dict[str, ColumnElement[Any]] = {column: excluded[column] for column in replace}
    updates.update({column: table.c[column] + excluded[column] for column in add})
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_=updates,
        where=None if newest_by is None else table.c[newest_by] <= excluded[newest_by],
    )


def array_parameter_name(column: str) -> str:
    """The bound parameter that carries ``column``'s values in an ``unnest_select``."""
    return f"{column}_values"


def _is_json(table: Table, column: str) -> bool:
    return isinstance(table.c[column].type, JSON)


def column_array_values(table: Table, column: str, rows: list[Row]) -> str:
    """``column``'s value of every row, as the array bound to ``array_parameter_name``."""
    values = [row[column] for row in rows]
    if _is_json(table, column):
        # An array of JSON lists would be read as a multi-dimensional array: send text.
        return array_literal([None if value is None else json_text(value) for value in values])
    return array_literal(values)


def json_text(value: Any) -> str:
    """``value`` (JSON-shaped: dicts, lists, strings, numbers, booleans) as JSON text.

    orjson writes it (a consumer batch writes each touched user's memberships as JSON: about
    3 us a user with the standard library, 0.3 us with orjson). Where orjson would decide
    otherwise than ``json.dumps`` (it writes NaN and Infinity as null, and refuses keys that
    are not strings), the standard library writes it, as before; the text may differ in
    spacing and escapes, never in the value read back.

    >>> json_text([[3, 0.25], [1, 1e-07]]), json_text({1: "a"})  # a key that is no string
    ('[[3,0.25],[1,1e-7]]', '{"1": "a"}')
    """
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value)
    if b"null" in encoded:
        return json.dumps(value)
    return encoded.decode("utf-8")


def array_literal(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of a one-dimensional array of ``values`` (None is NULL).

    The arrays of an upsert travel as one text parameter each, cast by the server: psycopg
    would otherwise adapt and escape every element in Python, which cost more than running
    the statement. Floats are written as their shortest text that reads back exactly, as
    ``repr`` writes them.

    >>> print(array_literal([1, 2.5, None, "a,b"]))
    {1,2.5,NULL,"a,b"}
    >>> print(array_literal([0.1, 6.5e-06, -0.0]), array_literal([3, -7]))
    {0.1,6.5e-6,-0.0} {3,-7}
    """
    values = list(values)
    kinds = set(map(type, values))
    # The usual columns hold one plain type: written without a Python call per element.
    # orjson writes a list of floats or ints about twenty times faster than repr element by
    # element (a consumer batch writes tens of thousands of statistics); it writes the
    # shortest text that reads back to the same double, as repr does, spelling exponents
    # without a leading zero (6.5e-6). NaN and infinities, which it writes as null, and ints
    # beyond 64 bits, which it refuses, go the per-element way.
    if kinds == {float} or kinds == {int}:
        try:
            text: str | None = orjson.dumps(values).decode("ascii")
        except orjson.JSONEncodeError:
            text = None
        if text is None or "null" in text:
            return "{" + ",".join(map(repr, values)) + "}"
        return "{" + text[1:-1] + "}"
    if kinds == {bytes}:
        # bytea's hex input form (_element_literal), its backslash escaped for the array.
        return '{"\\\\x' + '","\\\\x'.join(map(bytes.hex, values)) + '"}'
    if kinds == {str}:
        joined = _SEPARATOR.join(values)
        # PostgreSQL text cannot hold NUL, so NUL can only be the separator (else the
        # per-element path below writes it, and the database refuses it as it always did).
        if joined.count(_SEPARATOR) == len(values) - 1:
            escaped = joined.replace("\\", "\\\\").replace('"', '\\"')
            return '{"' + escaped.replace(_SEPARATOR, '","') + '"}'
    return "{" + ",".join(map(_element_literal, values)) + "}"


_SEPARATOR = "\x00"


def _element_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool | np.bool_):
        return "t" if value else "f"
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, bytes | bytearray | memoryview):
        # bytea's hex input form, its backslash escaped for the array syntax.
        return '"\\\\x' + bytes(value).hex() + '"'
    raise TypeError(f"no array form for a value of type {type(value).__name__}")


def unnest_select(table: Table, columns: Sequence[str]) -> Select[Any]:
    """SELECT * FROM unnest(CAST(:a AS type[]), ...): one row per array position, each
    array bound as its text form (``array_literal``)."""
    arrays = [
        cast(
            bindparam(array_parameter_name(column), type_=Text()),
            postgresql.ARRAY(Text() if _is_json(table, column) else table.c[column].type),
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
