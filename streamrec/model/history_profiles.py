"""Profiles z_u of users given by their histories, encoded as new users, nothing stored.

This is how the stream encodes a history it is asked to recommend for
(``EfficientRecStream.recommend_histories``): a new user whose interactions are exactly the
history's (the last weight and time of an item win), with its demographics, pooled under
the model's pooling (and recency, when configured). Full-catalogue scoring needs the
profiles themselves, to form the retrieval queries P z_u.

>>> from streamrec.config import ModelSettings, ServingSettings
>>> from streamrec.model.efficientrec import EfficientRec
>>> from streamrec.model.features import FeatureSchema
>>> from streamrec.model.history import UserHistory
>>> from streamrec.model.serving import ServingModel
>>> settings = ModelSettings(hash_buckets=64, item_dim=4, profile_dim=4, hidden_dim=8,
...                          clusters=3, feature_buckets=32)
>>> serving = ServingModel(1, EfficientRec.new(settings, FeatureSchema()))
>>> profiles = history_profiles(
...     serving, [UserHistory("u", [("i1", 1.0)]), UserHistory("empty", [])],
...     ServingSettings(top_memberships=2),
...     load_features=lambda ids: {})
>>> profiles[0].shape, profiles[1]
((4,), None)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.config import ServingSettings
from streamrec.model.history import UserHistory
from streamrec.model.serving import FeatureLoader, ServingModel
from streamrec.model.user_states import UserChangeSet, update_user_states


def history_profiles(
    serving: ServingModel,
    histories: Sequence[UserHistory],
    settings: ServingSettings,
    load_features: FeatureLoader,
) -> list[np.ndarray | None]:
    """Each history's profile z_u; None for a history with neither interactions nor
    demographics (the model knows nothing of such a user)."""
    rows = [row for row, history in enumerate(histories) if _has_anything(history)]
    updates = update_user_states(
        serving,
        [history_change_set(f"history {row}", histories[row]) for row in rows],
        settings.top_memberships,
        load_features,
        settings.pooling_half_life_seconds,
    )
    profiles: list[np.ndarray | None] = [None] * len(histories)
    for row, update in zip(rows, updates, strict=True):
        profiles[row] = update.after.profile
    return profiles


def history_change_set(key: str, history: UserHistory) -> UserChangeSet:
    """A new user whose interactions are exactly ``history``'s (the last weight and time of
    an item win), as the stream encodes a history."""
    weights = {item_id: weight for item_id, weight in history.interactions}
    timestamps: dict[str, float] = {}
    if history.timestamps is not None:
        timestamps = {
            item_id: float(timestamp)
            for (item_id, _), timestamp in zip(
                history.interactions, history.timestamps, strict=True
            )
        }
    return UserChangeSet(
        key,
        None,
        {},
        weights,
        dict(history.attributes),
        last_event_at=max(timestamps.values(), default=None),
        timestamps_after=timestamps,
    )


def _has_anything(history: UserHistory) -> bool:
    return bool(history.interactions or history.attributes)
