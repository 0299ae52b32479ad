"""What the streaming consumer calls per batch, vectorised: no per-event torch call.

Per batch of events the consumer (1) looks up h_j of the batch's items (``item_vectors``,
cached per model version by the caller), (2) applies each weight change to the user's running
sums (``apply_weight_changes``), (3) re-encodes the touched users in one pass
(``refresh_memberships``), (4) turns each touched user's before/after into additive
cluster-statistic deltas (``streamrec.model.contributions.batch_delta_columns``) and (5) asks
for recommendations (``recommend_for``).

>>> import numpy as np
>>> from streamrec.config import ModelSettings
>>> from streamrec.model.features import FeatureSchema
>>> from streamrec.state import UserProfile
>>> model = EfficientRec.new(ModelSettings(hash_buckets=256, item_dim=8, profile_dim=8,
...                                        hidden_dim=16, clusters=4, top_memberships=2),
...                          FeatureSchema())
>>> vectors = dict(zip(["a", "b"], model.item_vectors(["a", "b"], {})))
>>> users = {"u1": UserProfile.new("u1", dimension=8)}
>>> users = apply_weight_changes(model, users, [WeightChange("u1", "a", None, 1.0),
...                                             WeightChange("u1", "b", None, -0.5)], vectors)
>>> users["u1"].nonzero_count, users["u1"].interaction_count
(2, 2)
>>> [refreshed] = refresh_memberships(model, [users["u1"]], top=2, model_version=7)
>>> len(refreshed.top_clusters), refreshed.model_version
(2, 7)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from streamrec.events import RecommendedItem
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.memberships import as_pairs, top_memberships
from streamrec.model.pooling import apply_coefficient_changes
from streamrec.model.shortlists import Shortlists
from streamrec.model.voting import recommend
from streamrec.state import UserProfile


@dataclass(frozen=True)
class WeightChange:
    """User ``user_id``'s weight on ``item_id`` went from ``old_weight`` (None: no earlier
    interaction) to ``new_weight``."""

    user_id: str
    item_id: str
    old_weight: float | None
    new_weight: float


def apply_weight_changes(
    model: EfficientRec,
    users: Mapping[str, UserProfile],
    changes: Sequence[WeightChange],
    item_vectors: Mapping[str, np.ndarray],
) -> dict[str, UserProfile]:
    """New profiles of the users in ``users`` after ``changes`` (each user must be there,
    and each item in ``item_vectors``): s_u and n_u updated term by term, interaction_count
    increased for new interactions. Profiles and memberships are not recomputed here."""
    user_ids = sorted({change.user_id for change in changes})
    if not user_ids:
        return dict(users)
    row_of = {user_id: row for row, user_id in enumerate(user_ids)}
    sums = np.stack([users[user_id].pooled_sum for user_id in user_ids])
    counts = np.array([users[user_id].nonzero_count for user_id in user_ids], dtype=np.int64)
    old = np.array(
        [np.nan if change.old_weight is None else change.old_weight for change in changes],
        dtype=np.float32,
    )
    new = np.array([change.new_weight for change in changes], dtype=np.float32)
    sums, counts = apply_coefficient_changes(
        sums,
        counts,
        np.array([row_of[change.user_id] for change in changes], dtype=np.int64),
        np.stack([item_vectors[change.item_id] for change in changes]),
        model.pooling_coefficients(old),
        model.pooling_coefficients(new),
    )
    added = np.bincount(
        [row_of[change.user_id] for change in changes if change.old_weight is None],
        minlength=len(user_ids),
    )
    updated = dict(users)
    for row, user_id in enumerate(user_ids):
        user = users[user_id]
        updated[user_id] = replace(
            user,
            pooled_sum=sums[row],
            nonzero_count=int(counts[row]),
            interaction_count=user.interaction_count + int(added[row]),
        )
    return updated


def refresh_memberships(
    model: EfficientRec,
    users: Sequence[UserProfile],
    top: int,
    model_version: int | None = None,
) -> list[UserProfile]:
    """Profiles z_u and top-M memberships of many users in one pass. A user with no
    non-zero interaction is encoded from demographics alone if it has any; with neither it
    gets no profile and no clusters (recommend_for then answers from the global shortlist)."""
    if not users:
        return []
    encoded = model.encode_pooled_sums(
        np.stack([user.pooled_sum for user in users]),
        np.array([user.nonzero_count for user in users], dtype=np.int64),
        [user.attributes or None for user in users],
    )
    pairs = as_pairs(*top_memberships(encoded.memberships, top))
    refreshed = []
    for row, user in enumerate(users):
        blind = user.nonzero_count == 0 and not user.attributes
        refreshed.append(
            replace(
                user,
                profile=None if blind else encoded.profiles[row],
                top_clusters=() if blind else pairs[row],
                model_version=model_version,
            )
        )
    return refreshed


def recommend_for(
    user: UserProfile,
    shortlists: Shortlists,
    own_items: Sequence[str],
    count: int,
    model: EfficientRec | None = None,
) -> list[RecommendedItem]:
    """Top ``count`` items for a user with fresh top_clusters. Passing ``model`` (and
    shortlists with targets) re-ranks the candidates by the retrieval score."""
    clusters = np.array([cluster for cluster, _ in user.top_clusters], dtype=np.int64)
    memberships = np.array([value for _, value in user.top_clusters], dtype=np.float64)
    query = None
    if model is not None and user.profile is not None:
        query = model.retrieval_queries(user.profile[None, :])[0]
    return recommend(
        shortlists, clusters, memberships, shortlists.columns_of(own_items), count, query
    )
