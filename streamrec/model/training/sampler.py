"""Where training users come from: a sampler returns a batch of users' interaction sets.

The trainer depends only on the ``UserSampler`` interface, so it samples from memory here and
from the database in the trainer process. The cost of a batch depends on how many users it
holds (and their capped set sizes), never on how many users exist.

>>> import numpy as np
>>> from streamrec.model.interaction_table import InteractionTable
>>> table = InteractionTable.from_rows(
...     [("u1", "a", 1.0, 0.0, None), ("u1", "b", 0.5, 1.0, None), ("u2", "a", -1.0, 2.0, None),
...      ("u2", "c", 1.0, 3.0, None)])
>>> batch = InMemoryUserSampler(table)(2, np.random.default_rng(0))
>>> batch.users, sorted(set(batch.items))
(2, ['a', 'b', 'c'])
>>> sampler = InMemoryUserSampler(table)
>>> list(sampler.catalogue.items), sampler.catalogue.frequencies.tolist()
(['a', 'b', 'c'], [0.5, 0.25, 0.25])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamrec.model.interaction_sets import InteractionSets
from streamrec.model.interaction_table import InteractionTable


@dataclass(frozen=True)
class UserBatch:
    """Interaction sets of a batch of users, in compressed rows.

    ``items`` are the distinct item ids of the batch; row r says user ``offsets`` places it in
    rated ``items[item_rows[r]]`` with ``weights[r]`` at ``timestamps[r]`` (epoch seconds;
    None from a sampler that does not know them, which recency-weighted pooling cannot train
    on). ``attributes`` holds each user's demographics, or None. ``catalogue_rows`` gives each
    of ``items`` its position in the sampler's ``Catalogue``.
    """

    items: Sequence[str]
    item_rows: np.ndarray
    weights: np.ndarray
    offsets: np.ndarray
    attributes: Sequence[Mapping[str, str] | None]
    timestamps: np.ndarray | None = None
    catalogue_rows: np.ndarray | None = None

    @property
    def users(self) -> int:
        return len(self.offsets) - 1


@dataclass(frozen=True)
class Catalogue:
    """Every item a sampler can return, with its share of the interactions: the negatives of
    a full softmax, and the sampling probabilities a batch softmax corrects for."""

    items: Sequence[str]
    frequencies: np.ndarray


class UserSampler(Protocol):
    @property
    def catalogue(self) -> Catalogue: ...

    def __call__(self, users: int, generator: np.random.Generator) -> UserBatch:
        """``users`` users drawn at random (with replacement across calls), each with at
        least two interactions, so their sets split into two non-empty halves."""


class InMemoryUserSampler:
    """Samples users of an InteractionTable; at most ``max_interactions`` random interactions
    of each (a cap that keeps the cost of a step flat when some users have thousands)."""

    def __init__(
        self,
        table: InteractionTable,
        user_attributes: Mapping[str, Mapping[str, str]] | None = None,
        max_interactions: int = 256,
    ) -> None:
        self.sets = InteractionSets.from_table(table)
        self.max_interactions = max_interactions
        self.eligible = np.flatnonzero(self.sets.sizes >= 2)
        if len(self.eligible) == 0:
            raise ValueError("no user has the two interactions training needs")
        attributes = user_attributes or {}
        self.attributes = [attributes.get(user_id) for user_id in self.sets.user_vocabulary]
        counts = np.bincount(self.sets.items, minlength=len(self.sets.item_vocabulary))
        self.catalogue = Catalogue(self.sets.item_vocabulary, counts / counts.sum())

    def __call__(self, users: int, generator: np.random.Generator) -> UserBatch:
        chosen = generator.choice(self.eligible, size=min(users, len(self.eligible)), replace=False)
        rows: list[np.ndarray] = []
        for user in chosen:
            user_rows = np.arange(self.sets.offsets[user], self.sets.offsets[user + 1])
            if len(user_rows) > self.max_interactions:
                user_rows = generator.choice(user_rows, size=self.max_interactions, replace=False)
            rows.append(user_rows)
        all_rows = np.concatenate(rows)
        distinct, item_rows = np.unique(self.sets.items[all_rows], return_inverse=True)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(user_rows) for user_rows in rows], out=offsets[1:])
        return UserBatch(
            items=[self.sets.item_vocabulary[item] for item in distinct],
            item_rows=item_rows.astype(np.int64),
            weights=self.sets.weights[all_rows],
            offsets=offsets,
            attributes=[self.attributes[user] for user in chosen],
            timestamps=self.sets.timestamps[all_rows],
            catalogue_rows=distinct,
        )
