"""Rows are merged by key before an upsert, since one PostgreSQL statement may not touch a row
twice; sorting them keeps concurrent writers from deadlocking."""

from __future__ import annotations

import pytest

from streamrec.storage.memory import create_memory_database
from streamrec.storage.statements import chunked, merge_by_key, upsert
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
