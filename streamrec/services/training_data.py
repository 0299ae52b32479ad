"""The data of one training run: a fixed-size sample of users read from the database, and a
disjoint held-out sample of recently active users split cold-users style.

Training users are half the most recently active users (the data the fine-tune should adapt
to) and half users found by random seeks in the user-id index (so that the rest of the
population is not forgotten). Held-out users are recently active users kept out of training;
each one's interactions are split at random 50/50 into the history a model is shown and the
held-out items it should find. Every read goes through an index and is bounded by the sample
sizes, in short read-only transactions, so neither the cost of a run nor the locks it takes
grow with the number of users, and the consumers are never blocked.

>>> from streamrec.state import Interaction
>>> from streamrec.storage.memory import create_memory_database
>>> from streamrec.storage.unit_of_work import UnitOfWork
>>> engine = create_memory_database()
>>> with UnitOfWork(engine) as uow:
...     _ = uow.interactions.save_many(
...         Interaction(f"u{user}", f"i{(user + step) % 9}", 1.0, f"e{user}-{step}", "like", 1.0)
...         for user in range(30) for step in range(4))
...     uow.commit()
>>> sampler = TrainingSampler(engine, training_users=10, evaluation_users=5)
>>> sample = sampler.sample(np.random.default_rng(0))
>>> len(sample.training_user_ids), len(sample.held_out)
(10, 5)
>>> set(sample.training_user_ids).isdisjoint(case.history.user_id for case in sample.held_out)
True
>>> [len(case.history.interactions) for case in sample.held_out]
[2, 2, 2, 2, 2]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from streamrec.evaluation.splits import EvaluationCase
from streamrec.events import ItemEvent
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable
from streamrec.state import Interaction
from streamrec.storage.unit_of_work import UnitOfWork

# Users read per read-only transaction: short transactions, so SQLite writers barely wait.
READ_CHUNK_USERS = 500
HISTORY_SHARE = 0.5


@dataclass(frozen=True)
class TrainingSample:
    """Training users' interactions (a table, time ordered), their demographics, features of
    every item they or the held-out users touched, and the held-out cases."""

    table: InteractionTable
    attributes: dict[str, dict[str, str]]
    items: dict[str, ItemEvent]
    held_out: list[EvaluationCase]
    training_user_ids: list[str]
    sampled_at: float
    window: dict[str, Any] = field(default_factory=dict)

    @property
    def interactions(self) -> int:
        return len(self.table)


class TrainingSampler:
    """Reads a TrainingSample of at most ``training_users`` + ``evaluation_users`` users."""

    def __init__(
        self,
        engine: Engine,
        *,
        training_users: int,
        evaluation_users: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if training_users < 1 or evaluation_users < 1:
            raise ValueError("training_users and evaluation_users must be at least 1")
        self._engine = engine
        self._training_users = training_users
        self._evaluation_users = evaluation_users
        self._clock = clock

    def sample(self, generator: np.random.Generator) -> TrainingSample:
        sampled_at = self._clock()
        recent_count = self._evaluation_users + self._training_users // 2
        with UnitOfWork(self._engine, clock=self._clock) as uow:
            uow.samples.make_read_only()
            recent = uow.samples.recently_active_users(recent_count)
            shuffled = [recent[index] for index in generator.permutation(len(recent))]
            held_out_count = self._held_out_count(len(recent), recent_count)
            held_out_ids = shuffled[:held_out_count]
            training_ids = shuffled[held_out_count:]
            training_ids += uow.samples.random_users(
                self._training_users - len(training_ids), generator, exclude=recent
            )
        interactions, attributes = self._read_users([*training_ids, *held_out_ids])
        item_ids = {row.item_id for rows in interactions.values() for row in rows}
        items = self._read_items(item_ids)
        training_ids = [user_id for user_id in training_ids if user_id in interactions]
        table = InteractionTable.from_rows(
            (row.user_id, row.item_id, row.weight, row.timestamp, None)
            for user_id in training_ids
            for row in interactions[user_id]
        )
        held_out = [
            case
            for user_id in held_out_ids
            if (case := split_held_out(interactions.get(user_id, []), attributes, generator))
        ]
        timestamps = table.timestamps
        return TrainingSample(
            table=table,
            attributes={
                user_id: attributes[user_id] for user_id in training_ids if user_id in attributes
            },
            items=items,
            held_out=held_out,
            training_user_ids=training_ids,
            sampled_at=sampled_at,
            window={
                "until": sampled_at,
                "first_event_at": float(timestamps.min()) if len(timestamps) else None,
                "last_event_at": float(timestamps.max()) if len(timestamps) else None,
                "training_users": len(training_ids),
                "training_interactions": len(table),
                "held_out_users": len(held_out),
            },
        )

    def _held_out_count(self, found: int, wanted: int) -> int:
        """Held-out users among the ``found`` recent ones: all asked for when there are
        enough, else the same share of them, so that a small database still trains."""
        if found >= wanted:
            return self._evaluation_users
        share = round(found * self._evaluation_users / wanted)
        return min(max(share, 1), max(found - 1, 0))

    def _read_users(
        self, user_ids: Sequence[str]
    ) -> tuple[dict[str, list[Interaction]], dict[str, dict[str, str]]]:
        interactions: dict[str, list[Interaction]] = {}
        attributes: dict[str, dict[str, str]] = {}
        for start in range(0, len(user_ids), READ_CHUNK_USERS):
            chunk = user_ids[start : start + READ_CHUNK_USERS]
            with UnitOfWork(self._engine, clock=self._clock) as uow:
                uow.samples.make_read_only()
                interactions.update(uow.interactions.for_users(chunk))
                attributes.update(uow.users.attributes_many(chunk))
        return interactions, attributes

    def _read_items(self, item_ids: set[str]) -> dict[str, ItemEvent]:
        ordered = sorted(item_ids)
        items: dict[str, ItemEvent] = {}
        for start in range(0, len(ordered), READ_CHUNK_USERS * 10):
            with UnitOfWork(self._engine, clock=self._clock) as uow:
                uow.samples.make_read_only()
                items.update(uow.items.get_many(ordered[start : start + READ_CHUNK_USERS * 10]))
        return items


def split_held_out(
    rows: Sequence[Interaction],
    attributes: Mapping[str, Mapping[str, str]],
    generator: np.random.Generator,
) -> EvaluationCase | None:
    """The cold-users split of one held-out user: a random half of their interactions is the
    history (in time order), the rest is held out; "liked" are held-out items with a positive
    weight. None for a user with fewer than two interactions."""
    if len(rows) < 2:
        return None
    ordered = sorted(rows, key=lambda row: (row.timestamp, row.item_id))
    history_count = min(len(ordered) - 1, max(1, round(HISTORY_SHARE * len(ordered))))
    in_history = np.zeros(len(ordered), dtype=bool)
    in_history[generator.choice(len(ordered), size=history_count, replace=False)] = True
    user_id = ordered[0].user_id
    history = [row for row, shown in zip(ordered, in_history, strict=True) if shown]
    held_out = [row for row, shown in zip(ordered, in_history, strict=True) if not shown]
    return EvaluationCase(
        history=UserHistory(
            user_id,
            tuple((row.item_id, row.weight) for row in history),
            dict(attributes.get(user_id, {})),
            tuple(row.timestamp for row in history),
        ),
        held_out=tuple(row.item_id for row in held_out),
        liked=frozenset(row.item_id for row in held_out if row.weight > 0),
    )
