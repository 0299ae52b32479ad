"""Rows are merged by key before an upsert, since one PostgreSQL statement may not touch a row
twice; sorting them keeps concurrent writers from deadlocking."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import Float, Text, cast, literal, select
from sqlalchemy.dialects import postgresql

from streamrec.storage import create_database_engine
from streamrec.storage.memory import create_memory_database
from streamrec.storage.statements import (
    _element_literal,
    array_literal,
    chunked,
    json_text,
    merge_by_key,
    upsert,
)
from streamrec.storage.tables import ClusterMassRow, table_of


def test_added_columns_are_summed_per_key_and_rows_sorted_by_key() -> None:
    rows = [
        {"cluster": 2, "mass": 0.5},
        {"cluster": 1, "mass": 0.25},
        {"cluster": 2, "mass": 1.0},
    ]

    merged = merge_by_key(rows, key=("cluster",), add=("mass",))

    assert merged == [{"cluster": 1, "mass": 0.25}, {"cluster": 2, "mass": 1.5}]


def test_without_added_columns_the_last_row_of_a_key_wins() -> None:
    rows = [{"user": "u", "weight": 1.0}, {"user": "u", "weight": -1.0}]

    assert merge_by_key(rows, key=("user",)) == [{"user": "u", "weight": -1.0}]


def test_with_newest_by_the_newest_row_of_a_key_wins_whatever_the_order() -> None:
    rows = [{"item": "i", "at": 5.0, "title": "new"}, {"item": "i", "at": 3.0, "title": "old"}]

    assert merge_by_key(rows, key=("item",), newest_by="at")[0]["title"] == "new"


def test_merging_leaves_the_callers_rows_alone() -> None:
    rows = [{"cluster": 1, "mass": 1.0}, {"cluster": 1, "mass": 2.0}]

    merge_by_key(rows, key=("cluster",), add=("mass",))

    assert rows[0] == {"cluster": 1, "mass": 1.0}


def test_an_upsert_cannot_both_add_and_replace() -> None:
    engine = create_memory_database()
    with engine.connect() as connection, pytest.raises(ValueError, match="not both"):
        upsert(
            connection,
            table_of(ClusterMassRow),
            [],
            key=("model_version", "cluster"),
            add=("mass",),
            replace=("mass",),
        )


def test_chunked_splits_into_pieces_of_at_most_the_size() -> None:
    assert [len(chunk) for chunk in chunked(range(7), 3)] == [3, 3, 1]
    assert list(chunked([], 3)) == []


@pytest.mark.parametrize(
    "values",
    [
        ['say "hi"', "back\\slash", "a,b", "{x}", "NULL", "", "é"],
        [b"\x00\x01", b"", b'\\"{,}'],
        [b"ab", None, 2.5, "x"],
    ],
)
def test_array_literals_of_one_type_are_written_like_element_by_element(
    values: list[object],
) -> None:
    # The one-type columns take a shortcut; it must write what the element path writes.
    assert array_literal(values) == "{" + ",".join(map(_element_literal, values)) + "}"


NUMBER_COLUMNS = [
    [1.5, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 6.5e-06, 123456789.123],
    [
        random.Random(seed).uniform(-1, 1) * 10.0 ** random.Random(seed).randint(-12, 12)
        for seed in range(2_000)
    ],
    [3, -7, 0, 2**63 - 1, -(2**63)],
    [2**70, 1],  # beyond 64 bits: written element by element
    [float("nan"), 1.0, float("inf"), float("-inf")],  # written as repr writes them
]


@pytest.mark.parametrize("values", NUMBER_COLUMNS)
def test_array_literals_of_numbers_read_back_exactly(values: list[float | int]) -> None:
    elements = array_literal(values)[1:-1].split(",")
    read_back = [type(value)(element) for value, element in zip(values, elements, strict=True)]
    # repr() compares NaN with NaN and -0.0 apart from 0.0.
    assert list(map(repr, read_back)) == list(map(repr, values))


@pytest.mark.postgres
@pytest.mark.parametrize("values", [*NUMBER_COLUMNS[:2], NUMBER_COLUMNS[4]])
def test_postgresql_reads_float_array_literals_to_the_same_doubles(
    migrated_postgresql_url: str, values: list[float]
) -> None:
    engine = create_database_engine(migrated_postgresql_url)
    try:
        with engine.connect() as connection:
            read_back = connection.scalar(
                select(cast(literal(array_literal(values), Text()), postgresql.ARRAY(Float(53))))
            )
    finally:
        engine.dispose()
    assert list(map(repr, read_back)) == list(map(repr, values))


def test_json_text_reads_back_as_the_standard_librarys() -> None:
    for value in [
        [[3, 0.1], [12, 1e-07], [1, 123456.789]],
        {"age": "25-34", "city": "Zürich", "quote": 'say "hi"'},
        {"keys": {"age": [1700000000.5, "e-1"]}},
        [["i1", float("nan")]],  # refused by PostgreSQL later, as before: NaN, not null
        {1: "a"},
    ]:
        # Compared as normalised text, so that NaN compares equal to itself.
        read_back = json.dumps(json.loads(json_text(value)), sort_keys=True)
        assert read_back == json.dumps(json.loads(json.dumps(value)), sort_keys=True)
