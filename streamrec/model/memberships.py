"""Top-M memberships: only a user's M strongest clusters are used downstream.

>>> import numpy as np
>>> clusters, values = top_memberships(np.array([[0.1, 0.9, 0.5]]), 2)
>>> clusters.tolist(), values.tolist()
([[1, 2]], [[0.9, 0.5]])
>>> as_pairs(clusters, values)
[((1, 0.9), (2, 0.5))]
"""

from __future__ import annotations

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


def dense_top_memberships(memberships: np.ndarray, top: int) -> np.ndarray:
    """The memberships with all but each row's top M set to zero (p_uc as the statistics
    count it)."""
    clusters, values = top_memberships(memberships, top)
    dense = np.zeros_like(np.asarray(memberships, dtype=np.float64))
    np.put_along_axis(dense, clusters, values, axis=1)
    return dense
