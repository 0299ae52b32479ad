"""The state streamrec keeps between events, as plain values shared by the domain and storage.

The model turns events into these values; repositories in ``streamrec.storage`` persist them.
Neither side needs to know how the other works.

>>> import numpy as np
>>> user = UserProfile.new("u1", dimension=4)
>>> user.nonzero_count, user.pooled_sum.tolist()
(0, [0.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np


class ClusterItemStatistics(NamedTuple):
    """The stored totals of one (cluster, item) pair: what the deltas added up to."""

    item_id: str
    liked_mass: float
    rated_mass: float
    weighted_sum: float


@dataclass(slots=True)
class Interaction:
    """The latest preference of one user for one item (a later event replaces the weight)."""

    user_id: str
    item_id: str
    weight: float
    event_id: str
    event_type: str
    timestamp: float


@dataclass(slots=True)
class UserProfile:
    """A user's derived state under one model version. There are no learned per-user values:
    everything here is recomputable from the user's interactions and the model.

    pooled_sum is s_u = sum of w_uj * h_j, nonzero_count is n_u (the number of non-zero
    weights), profile is z_u, and top_clusters holds the top-M (cluster, membership) pairs.

    With recency-weighted pooling (``serving.pooling_half_life_seconds``) pooled_sum holds the
    recency-weighted terms relative to pooling_reference_time (t_ref, the newest timestamp of
    the user's interactions), weighted_count is n_u with recency weights (x_u = pooled_sum /
    weighted_count), and nonzero_count stays the plain number of non-zero terms. Both are
    None without recency.
    """

    user_id: str
    pooled_sum: np.ndarray
    nonzero_count: int = 0
    interaction_count: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    profile: np.ndarray | None = None
    top_clusters: tuple[tuple[int, float], ...] = ()
    model_version: int | None = None
    last_event_at: float | None = None
    weighted_count: float | None = None
    pooling_reference_time: float | None = None

    @classmethod
    def new(cls, user_id: str, dimension: int, **attributes: Any) -> UserProfile:
        return cls(user_id=user_id, pooled_sum=np.zeros(dimension, dtype=np.float32), **attributes)


@dataclass(frozen=True, slots=True)
class ClusterItemDelta:
    """An additive change to the statistics of one (cluster, item) pair.

    liked_mass is A_cj (sum of p_uc * max(w_uj, 0)), rated_mass is C_cj (sum of p_uc over
    raters), weighted_sum is sum of p_uc * w_uj (the paper's weighted rating numerator).
    Deltas commute, so consumers on different partitions may apply them in any order.
    """

    cluster: int
    item_id: str
    liked_mass: float
    rated_mass: float
    weighted_sum: float


@dataclass(frozen=True, slots=True)
class ClusterMassDelta:
    """An additive change to M_c, the total membership mass of cluster c."""

    cluster: int
    mass: float


class ModelStatus(StrEnum):
    CANDIDATE = "candidate"
    BUILDING = "building"
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"


@dataclass(slots=True)
class ModelVersion:
    """A registered model: its weights (a torch state dict, serialised), the config that built
    it, how it scored, and where it came from."""

    version: int | None
    status: ModelStatus
    config: dict[str, Any]
    weights: bytes
    metrics: dict[str, Any] = field(default_factory=dict)
    parent_version: int | None = None
    data_window: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    created_at: float | None = None
    promoted_at: float | None = None
