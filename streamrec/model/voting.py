"""Recommending by cluster voting: the user's top-M clusters vote over their shortlists.

score(u, j) = sum over the user's top clusters c of p_uc * W_cj, over the union of their
shortlists, items in S_u dropped, top N kept. The cost is O(M * L): independent of the number
of users and of the catalogue. ``vote_many`` computes the same scores for many users at once.

>>> import numpy as np
>>> from streamrec.model.shortlists import Shortlists
>>> lists = Shortlists(items=np.array([[0, 1], [1, 2]]), weights=np.array([[0.9, 0.5], [0.8, 0.1]]),
...                    item_ids=["a", "b", "c"], global_items=np.array([0, 1]),
...                    global_weights=np.array([1.0, 0.5]))
>>> vote(lists, np.array([0, 1]), np.array([1.0, 0.5]), exclude=np.array([0]), count=2)
(['b', 'c'], [0.9, 0.05])
"""

from __future__ import annotations

import numpy as np

from streamrec.model.shortlists import NO_ITEM, Shortlists


def vote(
    shortlists: Shortlists,
    clusters: np.ndarray,
    memberships: np.ndarray,
    exclude: np.ndarray,
    count: int,
) -> tuple[list[str], list[float]]:
    """Top ``count`` (item ids, scores) for one user with the given top clusters and
    memberships; ``exclude`` holds item columns (the user's items). Without clusters the
    global shortlist answers."""
    if len(clusters) == 0:
        candidates = shortlists.global_items
        scores = shortlists.global_weights.astype(np.float64)
    else:
        candidates = shortlists.items[clusters].ravel()
        scores = (shortlists.weights[clusters] * np.asarray(memberships)[:, None]).ravel()
    kept = (candidates != NO_ITEM) & ~np.isin(candidates, exclude)
    distinct, inverse = np.unique(candidates[kept], return_inverse=True)
    totals = np.bincount(inverse, weights=scores[kept], minlength=len(distinct))
    best = _top(totals, count)
    return [shortlists.item_ids[column] for column in distinct[best]], totals[best].tolist()


def vote_many(
    dense_shortlists: np.ndarray, top_memberships: np.ndarray, exclude: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The same scores for many users: ``top_memberships`` (users x K, zero outside each top
    M) times ``dense_shortlists`` (K x items, Shortlists.dense()); ``exclude`` is a boolean
    (users x items) mask. Returns (item columns, scores), each (users x count), best first;
    a column of -1 means fewer than ``count`` candidates."""
    scores = top_memberships @ dense_shortlists
    candidate = (np.abs(top_memberships) @ (dense_shortlists != 0)) > 0
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
