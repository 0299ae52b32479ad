"""Recommending by cluster voting: the user's top-M clusters vote over their shortlists.

score(u, j) = sum over the user's top clusters c of p_uc * W_cj, over the union of their
shortlists, items in S_u dropped, top N kept. The cost is O(M * L): independent of the number
of users and of the catalogue. Optionally the candidates are re-ranked by the retrieval score
(P z_u) . t_j instead (an ablation in docs/model.md). ``vote_many`` computes the same for many
users at once.

>>> import numpy as np
>>> from streamrec.model.shortlists import Shortlists
>>> lists = Shortlists(items=np.array([[0, 1], [1, 2]]),
...                    weights=np.array([[0.9, 0.5], [0.8, 0.1]]), item_ids=["a", "b", "c"],
...                    global_items=np.array([0, 1]), global_weights=np.array([1.0, 0.5]))
>>> recommend(lists, np.array([0, 1]), np.array([1.0, 0.5]), exclude=np.array([0]), count=2)
[RecommendedItem(item_id='b', score=0.9), RecommendedItem(item_id='c', score=0.05)]
>>> nothing = np.array([], dtype=int)
>>> [item.item_id for item in recommend(lists, nothing, np.array([]), nothing, count=1)]
['a']
"""

from __future__ import annotations

import numpy as np

from streamrec.events import RecommendedItem
from streamrec.model.shortlists import NO_ITEM, Shortlists


def candidate_votes(
    shortlists: Shortlists, clusters: np.ndarray, memberships: np.ndarray, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate column with its vote sum p_uc * W_cj; ``exclude`` holds columns (the
    user's own items). Without clusters, the global shortlist's items and weights."""
    if len(clusters) == 0:
        candidates = shortlists.global_items
        scores = shortlists.global_weights.astype(np.float64)
    else:
        candidates = shortlists.items[clusters].ravel()
        scores = (shortlists.weights[clusters] * np.asarray(memberships)[:, None]).ravel()
    kept = (candidates != NO_ITEM) & ~np.isin(candidates, exclude)
    distinct, inverse = np.unique(candidates[kept], return_inverse=True)
    return distinct, np.bincount(inverse, weights=scores[kept], minlength=len(distinct))


def recommend(
    shortlists: Shortlists,
    clusters: np.ndarray,
    memberships: np.ndarray,
    exclude: np.ndarray,
    count: int,
    query: np.ndarray | None = None,
) -> list[RecommendedItem]:
    """The top ``count`` items for one user with these top clusters and memberships. With a
    ``query`` (P z_u) and shortlists that carry targets, the clusters' candidates are ranked
    by query . t_j instead of their votes."""
    columns, scores = candidate_votes(shortlists, clusters, memberships, exclude)
    if query is not None and shortlists.targets is not None and len(clusters):
        scores = shortlists.targets[columns] @ np.asarray(query, dtype=shortlists.targets.dtype)
    best = _top(scores, count)
    return [
        RecommendedItem(shortlists.item_ids[column], float(score))
        for column, score in zip(columns[best], scores[best], strict=True)
    ]


def vote_many(
    dense_shortlists: np.ndarray,
    top_memberships: np.ndarray,
    exclude: np.ndarray,
    count: int,
    rerank_scores: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The same for many users: ``top_memberships`` (users x K, zero outside each top M)
    times ``dense_shortlists`` (K x items, Shortlists.dense()); ``exclude`` is a boolean
    (users x items) mask; ``rerank_scores`` (users x items), if given, ranks the candidates
    instead of the votes. Returns (item columns, scores), each (users x count), best first;
    NO_ITEM where there were fewer than ``count`` candidates."""
    votes = top_memberships @ dense_shortlists
    candidate = (np.abs(top_memberships) @ (dense_shortlists != 0)) > 0
    scores = votes if rerank_scores is None else rerank_scores
    scores = np.where(candidate & ~exclude, scores, -np.inf)
    taken = min(count, scores.shape[1])
    top = np.argpartition(-scores, taken - 1, axis=1)[:, :taken]
    values = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top, values = np.take_along_axis(top, order, 1), np.take_along_axis(values, order, 1)
    return np.where(np.isfinite(values), top, NO_ITEM), np.where(np.isfinite(values), values, 0.0)


def _top(scores: np.ndarray, count: int) -> np.ndarray:
    if len(scores) <= count:
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, count - 1)[:count]
    return top[np.argsort(-scores[top], kind="stable")]
