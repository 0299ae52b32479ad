"""Pooling a user's interaction set into x_u, kept as running sums updated exactly per event.

s_u = sum of c(w_uj) * h_j and n_u = the number of non-zero coefficients c(w_uj);
x_u = clip(s_u / n_u, -1, 1), zero for a user with no non-zero coefficient. The coefficient
c(w) is the preference weight itself in the method (``preference``); the model config may
choose another mapping (see ``pooling_coefficients``). A new interaction adds one term; a
changed weight subtracts the old term and adds the new one, so re-embedding a user never
re-reads S_u.

>>> import numpy as np
>>> vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
>>> sums, counts = np.zeros((1, 2), np.float32), np.zeros(1, np.int64)
>>> sums, counts = apply_coefficient_changes(sums, counts, np.array([0, 0]), vectors,
...                                          np.array([0.0, 0.0]), np.array([1.0, -0.5]))
>>> pooled_vectors(sums, counts).tolist(), counts.tolist()
([[0.5, -0.25]], [2])
>>> sums, counts = apply_coefficient_changes(sums, counts, np.array([0]), vectors[1:],
...                                          np.array([-0.5]), np.array([0.0]))
>>> pooled_vectors(sums, counts).tolist(), counts.tolist()
([[1.0, 0.0]], [1])
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

PoolingWeight = Literal["preference", "shifted", "presence"]


def pooling_coefficients(weights: np.ndarray, mode: PoolingWeight) -> np.ndarray:
    """c(w) for each preference weight; NaN marks "no interaction" and maps to 0.

    ``preference`` is the method's c(w) = w: a neutral weight (0) adds nothing and a dislike
    pulls the profile away from the item. ``shifted`` is (1 + w) / 2, in [0, 1]: every
    interaction but the strongest dislike counts, liked ones more. ``presence`` is 1 for any
    interaction. docs/model.md has what each measured.

    >>> pooling_coefficients(np.array([-1.0, 0.0, 1.0, np.nan]), "shifted").tolist()
    [0.0, 0.5, 1.0, 0.0]
    """
    weights = np.asarray(weights, dtype=np.float32)
    absent = np.isnan(weights)
    if mode == "preference":
        coefficients = weights
    elif mode == "shifted":
        coefficients = (1.0 + weights) / 2.0
    elif mode == "presence":
        coefficients = np.ones_like(weights)
    else:
        raise ValueError(f"unknown pooling weight {mode!r}")
    return np.where(absent, 0.0, coefficients).astype(np.float32)


def pooled_vectors(pooled_sums: np.ndarray, nonzero_counts: np.ndarray) -> np.ndarray:
    """x_u for each row: clip(s_u / n_u, -1, 1), zero where n_u is 0."""
    counts = np.maximum(np.asarray(nonzero_counts, dtype=np.float32), 1.0)
    return np.clip(np.asarray(pooled_sums, dtype=np.float32) / counts[:, None], -1.0, 1.0)


def full_pooled_sum(item_vectors: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, int]:
    """s_u and n_u recomputed from the whole interaction set (the reference for the sums)."""
    coefficients = np.asarray(coefficients, dtype=np.float32)
    pooled_sum = (coefficients[:, None] * np.asarray(item_vectors, dtype=np.float32)).sum(axis=0)
    return pooled_sum.astype(np.float32), int(np.count_nonzero(coefficients))


def apply_coefficient_changes(
    pooled_sums: np.ndarray,
    nonzero_counts: np.ndarray,
    rows: np.ndarray,
    item_vectors: np.ndarray,
    old_coefficients: np.ndarray,
    new_coefficients: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """New (sums, counts) after the coefficient of item k for user rows[k] went from
    old_coefficients[k] to new_coefficients[k] (0 for an interaction that did not exist).
    Inputs are not modified; several changes to the same row in one call all apply."""
    rows = np.asarray(rows, dtype=np.int64)
    old_coefficients = np.asarray(old_coefficients, dtype=np.float32)
    new_coefficients = np.asarray(new_coefficients, dtype=np.float32)
    sums = np.array(pooled_sums, dtype=np.float32, copy=True)
    counts = np.array(nonzero_counts, dtype=np.int64, copy=True)
    vectors = np.asarray(item_vectors, dtype=np.float32)
    # Subtract the old term, add the new one (not their difference): the order of float
    # operations then matches a recomputation term by term as closely as possible.
    np.add.at(sums, rows, -old_coefficients[:, None] * vectors)
    np.add.at(sums, rows, new_coefficients[:, None] * vectors)
    count_changes = (new_coefficients != 0).astype(np.int64) - (old_coefficients != 0).astype(
        np.int64
    )
    np.add.at(counts, rows, count_changes)
    return sums, counts


def pool_bags(
    item_vectors: torch.Tensor,
    item_rows: torch.Tensor,
    bag_of_row: torch.Tensor,
    coefficients: torch.Tensor,
    bags: int,
) -> torch.Tensor:
    """x for many interaction sets at once (training): row r adds coefficients[r] times
    item_vectors[item_rows[r]] to bag bag_of_row[r]."""
    terms = coefficients[:, None] * item_vectors[item_rows]
    sums = item_vectors.new_zeros((bags, item_vectors.shape[1])).index_add_(0, bag_of_row, terms)
    counts = torch.zeros(bags, dtype=item_vectors.dtype, device=item_vectors.device)
    counts.index_add_(0, bag_of_row, (coefficients != 0).to(item_vectors.dtype))
    return torch.clamp(sums / counts.clamp(min=1.0)[:, None], -1.0, 1.0)
