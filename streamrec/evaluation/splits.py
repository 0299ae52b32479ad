"""The two offline protocols as data splits: training interactions plus evaluation cases.

*cold-users* (the paper's): users are split at random 65% train / 35% test; each test user's
interactions are split at random 50/50 into the history the recommender sees and the held-out
items it should find. *loo* (leave-one-out, the ELCRec benchmark): every user's last interaction
is held out, everything before it is both the user's history and training data.

>>> from streamrec.datasets.base import Dataset
>>> from streamrec.model.interaction_table import InteractionTable
>>> rows = [(f"u{user}", f"i{item}", 1.0, float(item), 4.0)
...         for user in range(20) for item in range(user % 5, user % 5 + 6)]
>>> dataset = Dataset("toy", InteractionTable.from_rows(rows))
>>> split = split_cold_users(dataset, seed=0)
>>> len(split.cases), len(split.cases[0].history.interactions), len(split.cases[0].held_out)
(7, 3, 3)
>>> loo = split_leave_one_out(dataset)
>>> len(loo.cases), loo.cases[0].held_out
(20, ('i5',))
>>> validation = validation_split(split, dataset, seed=0)
>>> len(validation.cases), set(validation.train.users) <= set(split.train.users)
(2, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamrec.datasets.base import Dataset
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable

COLD_USERS = "cold-users"
LEAVE_ONE_OUT = "loo"
PROTOCOLS = (COLD_USERS, LEAVE_ONE_OUT)
LIKED_RATING = 4.0


@dataclass(frozen=True)
class EvaluationCase:
    """One evaluated user: what the recommender is given and what it should find.

    liked is the subset of held_out rated >= 4 (for implicit data: with a positive weight).
    """

    history: UserHistory
    held_out: tuple[str, ...]
    liked: frozenset[str]


@dataclass(frozen=True)
class EvaluationSplit:
    protocol: str
    seed: int | None
    train: InteractionTable
    cases: list[EvaluationCase]
    skipped_users: int  # users too short to evaluate (fewer than two interactions)

    def training_items(self) -> set[str]:
        vocabulary = self.train.item_vocabulary
        return {vocabulary[item] for item in np.unique(self.train.items)}

    def summary(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "train_users": int(np.unique(self.train.users).size),
            "train_interactions": len(self.train),
            "train_items": int(np.unique(self.train.items).size),
            "test_users": len(self.cases),
            "history_interactions": sum(len(case.history.interactions) for case in self.cases),
            "held_out_interactions": sum(len(case.held_out) for case in self.cases),
            "skipped_users": self.skipped_users,
        }


def latest_per_pair(table: InteractionTable) -> InteractionTable:
    """Keep only the last event of each (user, item) pair: a later event replaces the weight."""
    pair = table.users.astype(np.int64) * len(table.item_vocabulary) + table.items
    _, last_from_end = np.unique(pair[::-1], return_index=True)
    keep = np.sort(len(table) - 1 - last_from_end)
    return table.subset(keep)


def split_cold_users(
    dataset: Dataset,
    seed: int,
    train_fraction: float = 0.65,
    history_fraction: float = 0.5,
) -> EvaluationSplit:
    """The paper's protocol; test users are never seen in training."""
    if not 0.0 < train_fraction < 1.0 or not 0.0 < history_fraction < 1.0:
        raise ValueError("train_fraction and history_fraction must be strictly between 0 and 1")
    table = latest_per_pair(dataset.table)
    random = np.random.default_rng(seed)
    users = np.unique(table.users)
    shuffled = random.permutation(users)
    train_count = round(train_fraction * users.size)
    is_train_user = np.zeros(len(table.user_vocabulary), dtype=bool)
    is_train_user[shuffled[:train_count]] = True
    train = table.subset(is_train_user[table.users])
    cases: list[EvaluationCase] = []
    skipped = 0
    # Test users in a fixed order, each drawing from the same generator: deterministic per seed.
    test_rows = np.flatnonzero(~is_train_user[table.users])
    for user, rows in _rows_by_user(table.subset(test_rows), test_rows):
        if rows.size < 2:
            skipped += 1
            continue
        history_count = min(rows.size - 1, max(1, round(history_fraction * rows.size)))
        chosen = np.zeros(rows.size, dtype=bool)
        chosen[random.choice(rows.size, size=history_count, replace=False)] = True
        cases.append(_case(dataset, table, user, rows[chosen], rows[~chosen]))
    return EvaluationSplit(COLD_USERS, seed, train, cases, skipped)


def split_leave_one_out(dataset: Dataset) -> EvaluationSplit:
    """Each user's last interaction (by timestamp, ties in file order) is the test item."""
    table = dataset.table
    is_test_row = np.zeros(len(table), dtype=bool)
    cases: list[EvaluationCase] = []
    skipped = 0
    for user, rows in _rows_by_user(table):
        if rows.size < 2:
            skipped += 1
            continue
        is_test_row[rows[-1]] = True
        cases.append(_case(dataset, table, user, rows[:-1], rows[-1:]))
    return EvaluationSplit(LEAVE_ONE_OUT, None, table.subset(~is_test_row), cases, skipped)


def split_for(protocol: str, dataset: Dataset, seed: int) -> EvaluationSplit:
    if protocol == COLD_USERS:
        return split_cold_users(dataset, seed)
    if protocol == LEAVE_ONE_OUT:
        return split_leave_one_out(dataset)
    raise ValueError(f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")


VALIDATION_FRACTION = 0.15


def validation_split(
    split: EvaluationSplit,
    dataset: Dataset,
    seed: int,
    validation_fraction: float = VALIDATION_FRACTION,
) -> EvaluationSplit:
    """Validation users drawn from ``split``'s training data only, under the same protocol,
    for choosing settings without the test users: *cold-users* holds out
    ``validation_fraction`` of the training users (their interactions split 50/50 like a
    test user's); *loo* holds out each training user's last training interaction."""
    training = Dataset(
        dataset.name, split.train, dataset.items, dataset.user_attributes, dataset.event_type
    )
    if split.protocol == COLD_USERS:
        return split_cold_users(training, seed, train_fraction=1.0 - validation_fraction)
    if split.protocol == LEAVE_ONE_OUT:
        return split_leave_one_out(training)
    raise ValueError(f"unknown protocol {split.protocol!r}")


def _rows_by_user(
    table: InteractionTable, positions: np.ndarray | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(user index, that user's row positions in time order) for each user, by user index.

    positions maps the table's rows to the positions reported (default: the rows themselves).
    """
    rows = np.arange(len(table)) if positions is None else positions
    order = np.argsort(table.users, kind="stable")  # stable: time order within a user
    sorted_users = table.users[order]
    boundaries = np.flatnonzero(np.diff(sorted_users)) + 1
    for group in np.split(order, boundaries):
        if group.size:
            yield int(table.users[group[0]]), rows[group]


def _case(
    dataset: Dataset,
    table: InteractionTable,
    user: int,
    history_rows: np.ndarray,
    held_out_rows: np.ndarray,
) -> EvaluationCase:
    items = table.item_vocabulary
    user_id = table.user_vocabulary[user]
    history_rows = np.sort(history_rows)  # rows are in time order, so this is time order
    held_out = tuple(items[item] for item in table.items[held_out_rows])
    return EvaluationCase(
        history=UserHistory(
            user_id=user_id,
            interactions=tuple(
                (items[item], float(weight))
                for item, weight in zip(
                    table.items[history_rows], table.weights[history_rows], strict=True
                )
            ),
            attributes=dict(dataset.user_attributes.get(user_id, {})),
            timestamps=tuple(float(time) for time in table.timestamps[history_rows]),
        ),
        held_out=held_out,
        liked=frozenset(
            items[item]
            for item, rating, weight in zip(
                table.items[held_out_rows],
                table.ratings[held_out_rows],
                table.weights[held_out_rows],
                strict=True,
            )
            if (rating >= LIKED_RATING if not np.isnan(rating) else weight > 0)
        ),
    )
