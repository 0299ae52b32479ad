"""The interface every offline recommender implements, streamrec and baselines alike.

A recommender is fitted on training interactions, then asked for the top-n items of users it
may never have seen, given only their history (the cold-user case EfficientRec exists for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from streamrec.events import ItemEvent
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable


class OfflineRecommender(Protocol):
    name: str

    def fit(
        self,
        train: InteractionTable,
        items: Mapping[str, ItemEvent],
        user_attributes: Mapping[str, Mapping[str, str]],
    ) -> None:
        """Learn from the training users' interactions."""

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        """Top-n item ids for each history, best first, never an item in that history."""

    def parameter_count(self) -> int:
        """Number of learned parameters (0 for a count-based model)."""
