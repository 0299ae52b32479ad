"""Validation users come from the training data only, never from the test users."""

from __future__ import annotations

import numpy as np

from streamrec.datasets.base import Dataset
from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
from streamrec.evaluation.splits import (
    split_cold_users,
    split_leave_one_out,
    validation_split,
)
from streamrec.model.interaction_table import InteractionTable


def user_ids(table: InteractionTable) -> set[str]:
    return {table.user_vocabulary[user] for user in np.unique(table.users)}


def test_cold_users_validation_holds_out_training_users_only() -> None:
    dataset = SyntheticStream(SyntheticConfig(users=200, items=60, groups=3, seed=2)).to_dataset()
    split = split_cold_users(dataset, seed=0)
    validation = validation_split(split, dataset, seed=0)
    training_users = user_ids(split.train)
    test_users = {case.history.user_id for case in split.cases}
    validation_users = {case.history.user_id for case in validation.cases}
    assert validation_users and validation_users <= training_users
    assert not validation_users & test_users
    assert not validation_users & user_ids(validation.train)
    assert user_ids(validation.train) | validation_users == training_users
    # About 15% of the training users, each split into history and held-out items.
    assert 0.1 < len(validation_users) / len(training_users) < 0.2
    assert all(case.history.interactions and case.held_out for case in validation.cases)


def test_cold_users_validation_is_deterministic_for_a_seed() -> None:
    dataset = SyntheticStream(SyntheticConfig(users=120, items=40, groups=3, seed=2)).to_dataset()
    split = split_cold_users(dataset, seed=0)
    first, again = validation_split(split, dataset, 5), validation_split(split, dataset, 5)
    assert [case.held_out for case in first.cases] == [case.held_out for case in again.cases]


def test_leave_one_out_validation_holds_out_the_last_training_item() -> None:
    rows = [("u1", item, 1.0, float(step), None) for step, item in enumerate("abcd")]
    rows += [("u2", item, 1.0, float(step), None) for step, item in enumerate("xyz")]
    dataset = Dataset("toy", InteractionTable.from_rows(rows))
    split = split_leave_one_out(dataset)
    validation = validation_split(split, dataset, seed=0)
    held_out = {case.history.user_id: case.held_out for case in validation.cases}
    assert held_out == {"u1": ("c",), "u2": ("y",)}
    assert len(validation.train) == len(dataset.table) - 4
