"""Top-M memberships: only a user's M strongest clusters are used downstream.

>>> import numpy as np
>>> clusters, values = top_memberships(np.array([[0.1, 0.9, 0.5]]), 2)
>>> clusters.tolist(), values.tolist()
([[1, 2]], [[0.9, 0.5]])
>>> as_pairs(clusters, values)
[((1, 0.9), (2, 0.5))]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def top_memberships(memberships: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The top clusters of each row, strongest first: (cluster ids (n, M), values (n, M))."""
    memberships = np.asarray(memberships)
    top = min(top, memberships.shape[1])
    if top < memberships.shape[1]:
        candidates = np.argpartition(-memberships, top - 1, axis=1)[:, :top]
    else:
        candidates = np.broadcast_to(np.arange(top), (memberships.shape[0], top))
    values = np.take_along_axis(memberships, candidates, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return (
        np.take_along_axis(candidates, order, axis=1).astype(np.int64),
        np.take_along_axis(values, order, axis=1),
    )


def as_pairs(clusters: np.ndarray, values: np.ndarray) -> list[tuple[tuple[int, float], ...]]:
    """Rows of (cluster, membership) pairs, the form UserProfile.top_clusters keeps."""
    return [
        tuple((int(cluster), float(value)) for cluster, value in zip(row_c, row_v, strict=True))
        for row_c, row_v in zip(clusters, values, strict=True)
    ]


def rounded_memberships(
    pairs: Sequence[tuple[int, float]], precision: float
) -> tuple[tuple[int, float], ...]:
    """``pairs`` with each membership rounded to the nearest power of ``1 + precision``
    (0: unchanged): the memberships the cluster statistics hold.

    A user's every event moves their soft memberships a little, and moving a membership
    moves every one of the user's item contributions to that cluster (O(|S_u|) statistic
    rows per cluster). A rounded membership changes only when it crosses a grid point, so
    most events move only their own item's terms. The grid is relative, so a small
    membership keeps its size (within half a step) instead of rounding to nothing. Rounded
    values are a function of the current memberships alone: the statistics stay exactly the
    sum of every user's contribution, however the stream was batched or replayed.

    >>> [(cluster, round(value, 4)) for cluster, value in
    ...  rounded_memberships(((3, 0.7143), (1, 0.2611), (5, 0.0046)), 0.1)]
    [(3, 0.683), (1, 0.2633), (5, 0.0048)]
    >>> rounded_memberships(((3, 0.7143),), 0.0)
    ((3, 0.7143),)
    """
    if precision <= 0.0:
        return tuple(pairs)
    ratio = math.log1p(precision)
    return tuple(
        (cluster, math.exp(round(math.log(membership) / ratio) * ratio))
        for cluster, membership in pairs
        if membership > 0.0
    )


def dense_top_memberships(memberships: np.ndarray, top: int) -> np.ndarray:
    """The memberships with all but each row's top M set to zero (p_uc as the statistics
    count it)."""
    clusters, values = top_memberships(memberships, top)
    dense = np.zeros_like(np.asarray(memberships, dtype=np.float64))
    np.put_along_axis(dense, clusters, values, axis=1)
    return dense
