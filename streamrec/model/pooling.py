"""Pooling a user's interaction set into x_u, kept as running sums updated exactly per event.

s_u = sum of c(w_uj) * h_j and n_u = the number of non-zero coefficients c(w_uj);
x_u = clip(s_u / n_u, -1, 1), zero for a user with no non-zero coefficient. The coefficient
c(w) is the preference weight itself in the method (``preference``); the model config may
choose another mapping (see ``pooling_coefficients``). A new interaction adds one term; a
changed weight subtracts the old term and adds the new one, so re-embedding a user never
re-reads S_u. With ``serving.pooling_half_life_seconds`` each term and its count contribution
are also weighted by recency, kept exactly incremental as forward decay
(``RecencyPooledSums``, ``apply_decayed_coefficient_changes``; see the section below).

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

from dataclasses import dataclass
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
    """x_u for each row: clip(s_u / n_u, -1, 1), zero where n_u is 0.

    Integer counts (no recency weighting) are the number of non-zero terms. Float counts are
    recency-weighted (a sum of factors r_i, possibly below 1); 0 or less is an empty set
    (``RecencyPooledSums`` sets both sums and count of an emptied set to exactly 0).

    >>> pooled_vectors(np.array([[0.5, 1.0], [3.0, 3.0]]), np.array([0.5, 0.0])).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    counts = np.asarray(nonzero_counts)
    if counts.dtype.kind != "f":
        counts = np.maximum(counts.astype(np.float32), 1.0)
        return np.clip(np.asarray(pooled_sums, dtype=np.float32) / counts[:, None], -1.0, 1.0)
    # In float64: a decayed count may be far below float32's range while its ratio is not.
    present = counts > 0
    safe = np.where(present, counts, 1.0).astype(np.float64)
    ratios = np.clip(np.asarray(pooled_sums, dtype=np.float64) / safe[:, None], -1.0, 1.0)
    return np.where(present[:, None], ratios, 0.0).astype(np.float32)


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
    recency: torch.Tensor | None = None,
) -> torch.Tensor:
    """x for many interaction sets at once (training): row r adds coefficients[r] times
    item_vectors[item_rows[r]] to bag bag_of_row[r]. ``recency`` (optional) multiplies row r's
    term and its count contribution by recency[r] (``bag_recency_factors``); a bag's newest
    non-zero row then has factor 1, so its count is at least 1 and the clamp changes nothing.

    >>> vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> rows, bags = torch.tensor([0, 1]), torch.tensor([0, 0])
    >>> pool_bags(vectors, rows, bags, torch.ones(2), 1, torch.tensor([0.5, 1.0])).tolist()
    [[0.3333333432674408, 0.6666666865348816]]
    """
    present = (coefficients != 0).to(item_vectors.dtype)
    if recency is not None:
        coefficients = coefficients * recency
        present = present * recency
    terms = coefficients[:, None] * item_vectors[item_rows]
    sums = item_vectors.new_zeros((bags, item_vectors.shape[1])).index_add_(0, bag_of_row, terms)
    counts = torch.zeros(bags, dtype=item_vectors.dtype, device=item_vectors.device)
    counts.index_add_(0, bag_of_row, present)
    return torch.clamp(sums / counts.clamp(min=1.0)[:, None], -1.0, 1.0)


def bag_recency_factors(
    timestamps: np.ndarray,
    bag_of_row: np.ndarray,
    coefficients: np.ndarray,
    bags: int,
    half_life_seconds: float,
) -> np.ndarray:
    """r for each row of many bags, each bag's reference time its newest row with a non-zero
    coefficient (its newest row if it has none): the factors ``pool_bags`` takes.

    >>> bag_recency_factors(np.array([0.0, 1.0, 5.0, 3.0]), np.array([0, 0, 1, 1]),
    ...                     np.array([1.0, 1.0, 0.0, 1.0]), 2, 1.0).tolist()
    [0.5, 1.0, 4.0, 1.0]
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    bag_of_row = np.asarray(bag_of_row, dtype=np.int64)
    nonzero = np.asarray(coefficients) != 0
    newest_any = np.full(bags, -np.inf)
    np.maximum.at(newest_any, bag_of_row, timestamps)
    newest_nonzero = np.full(bags, -np.inf)
    np.maximum.at(newest_nonzero, bag_of_row[nonzero], timestamps[nonzero])
    references = np.where(np.isfinite(newest_nonzero), newest_nonzero, newest_any)
    return recency_factors(timestamps, references[bag_of_row], half_life_seconds)


def set_recency_factors(
    timestamps: np.ndarray, coefficients: np.ndarray, half_life_seconds: float
) -> np.ndarray:
    """``bag_recency_factors`` of one interaction set: r for each interaction, the reference
    time its newest interaction with a non-zero coefficient (its newest if none has one).

    >>> set_recency_factors(np.array([3.0, 1.0, 4.0]), np.array([1.0, 1.0, 0.0]), 1.0).tolist()
    [1.0, 0.25, 2.0]
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) == 0:
        return timestamps
    nonzero = np.asarray(coefficients) != 0
    reference = timestamps[nonzero].max() if nonzero.any() else timestamps.max()
    return recency_factors(timestamps, reference, half_life_seconds)


# Recency-weighted pooling (``serving.pooling_half_life_seconds`` = h), as forward decay.
#
# Each term and its count contribution are multiplied by r_i = 2^(-(t_ref - t_i) / h). x_u =
# s_u / n_u does not depend on t_ref (a common factor), so a user state keeps (s_u, n_u,
# t_ref) and moves t_ref forward to the newest event by rescaling both sums once: exact, no
# re-read of S_u, events in any order.


def recency_factors(
    timestamps: np.ndarray, reference_times: np.ndarray | float, half_life_seconds: float | None
) -> np.ndarray:
    """r = 2^(-(reference - t) / h) for each timestamp (float64); all ones without a half-life.

    >>> recency_factors(np.array([10.0, 8.0, 12.0]), 10.0, 2.0).tolist()
    [1.0, 0.5, 2.0]
    >>> recency_factors(np.array([10.0, 8.0]), 10.0, None).tolist()
    [1.0, 1.0]
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if half_life_seconds is None:
        return np.ones_like(timestamps)
    return np.exp2(
        -(np.asarray(reference_times, dtype=np.float64) - timestamps) / half_life_seconds
    )


def decayed_pooled_sum(
    item_vectors: np.ndarray,
    coefficients: np.ndarray,
    timestamps: np.ndarray,
    reference_time: float,
    half_life_seconds: float,
) -> tuple[np.ndarray, float]:
    """s_u and n_u of a whole interaction set with recency factors relative to
    ``reference_time`` (the reference for the incremental, forward-decayed sums).

    >>> vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> total, count = decayed_pooled_sum(vectors, np.array([1.0, 1.0]), np.array([0.0, 1.0]),
    ...                                   1.0, 1.0)
    >>> total.tolist(), count
    ([0.5, 1.0], 1.5)
    """
    coefficients = np.asarray(coefficients, dtype=np.float64)
    factors = recency_factors(timestamps, reference_time, half_life_seconds)
    weighted = coefficients * factors
    pooled_sum = (weighted[:, None] * np.asarray(item_vectors, dtype=np.float64)).sum(axis=0)
    return pooled_sum, float(factors[coefficients != 0].sum())


@dataclass(frozen=True)
class RecencyPooledSums:
    """The forward-decayed running sums of many users (one row each), all relative to each
    row's reference time: sums s_u (float64 recommended for long streams; the dtype given is
    kept), weighted_counts n_u (float64), nonzero_counts (int64, the plain number of non-zero
    terms: a row whose number drops to 0 is reset to exact zeros, so float rounding never
    leaves a phantom profile), reference_times t_ref (float64, NaN before a row's first
    event). x_u = ``pooled_vectors(sums, weighted_counts)``.

    Rounding: removing a term leaves ~1e-16 of its size (float64) behind, so x_u's error is
    ~1e-16 / n_u. n_u only gets small when the newest non-zero terms were removed and the
    rest is many half-lives older than t_ref; a row with n_u below ~1e-6 is best recomputed
    from its whole set (``decayed_pooled_sum`` at t_ref).
    """

    sums: np.ndarray
    weighted_counts: np.ndarray
    nonzero_counts: np.ndarray
    reference_times: np.ndarray

    @classmethod
    def empty(cls, users: int, dimension: int, dtype: type = np.float64) -> RecencyPooledSums:
        return cls(
            np.zeros((users, dimension), dtype=dtype),
            np.zeros(users),
            np.zeros(users, dtype=np.int64),
            np.full(users, np.nan),
        )

    def pooled(self) -> np.ndarray:
        """x_u of each row."""
        return pooled_vectors(self.sums, self.weighted_counts)


def advance_reference_times(
    state: RecencyPooledSums, rows: np.ndarray, timestamps: np.ndarray, half_life_seconds: float
) -> RecencyPooledSums:
    """The state with each row's reference moved forward to its newest event in
    ``timestamps`` (rows[k] had an event at timestamps[k]) if that is later, its sums and
    weighted count rescaled by 2^(-(new - old) / h). A NaN reference (no event yet) just takes
    the newest time. The input is not modified.

    >>> state = RecencyPooledSums(np.array([[2.0, 4.0]]), np.array([2.0]), np.array([2]),
    ...                           np.array([0.0]))
    >>> moved = advance_reference_times(state, np.array([0, 0]), np.array([1.0, -3.0]), 1.0)
    >>> moved.sums.tolist(), moved.weighted_counts.tolist(), moved.reference_times.tolist()
    ([[1.0, 2.0]], [1.0], [1.0])
    """
    old_references = np.asarray(state.reference_times, dtype=np.float64)
    newest = np.full(len(old_references), -np.inf)
    np.maximum.at(newest, np.asarray(rows, dtype=np.int64), np.asarray(timestamps, np.float64))
    references = np.fmax(old_references, newest)
    references = np.where(np.isinf(references), old_references, references)  # no event: keep
    known = ~np.isnan(old_references)
    scale = np.ones(len(references))
    scale[known] = np.exp2(-(references[known] - old_references[known]) / half_life_seconds)
    sums = np.array(state.sums, copy=True)
    sums *= scale.astype(sums.dtype)[:, None]
    return RecencyPooledSums(
        sums,
        np.asarray(state.weighted_counts, dtype=np.float64) * scale,
        np.array(state.nonzero_counts, dtype=np.int64, copy=True),
        references,
    )


def apply_decayed_coefficient_changes(
    state: RecencyPooledSums,
    rows: np.ndarray,
    item_vectors: np.ndarray,
    old_coefficients: np.ndarray,
    old_timestamps: np.ndarray,
    new_coefficients: np.ndarray,
    new_timestamps: np.ndarray,
    half_life_seconds: float,
) -> RecencyPooledSums:
    """``apply_coefficient_changes`` with recency weights: the state after the coefficient of
    item k for user rows[k] went from old_coefficients[k] (given at old_timestamps[k]; 0 and
    any time for a new interaction) to new_coefficients[k] at new_timestamps[k]. Each row's
    reference first moves to its newest new timestamp (``advance_reference_times``); then the
    old term is removed with the factor of its own old timestamp and the new one added with
    its factor. Events older than the reference (late arrivals) simply get a factor below 1.
    Several changes to one row in one call all apply (also two to the same item, in order).
    The input is not modified.

    >>> vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> state = apply_decayed_coefficient_changes(
    ...     RecencyPooledSums.empty(1, 2), np.array([0, 0]), vectors, np.zeros(2), np.zeros(2),
    ...     np.ones(2), np.array([5.0, 4.0]), 1.0)
    >>> state.sums.tolist(), state.weighted_counts.tolist(), state.reference_times.tolist()
    ([[1.0, 0.5]], [1.5], [5.0])
    >>> state = apply_decayed_coefficient_changes(  # item 1 changes to 0.5 at t = 6
    ...     state, np.array([0]), vectors[1:], np.ones(1), np.array([4.0]), np.array([0.5]),
    ...     np.array([6.0]), 1.0)
    >>> state.sums.tolist(), state.weighted_counts.tolist(), state.pooled().tolist()
    ([[0.5, 0.5]], [1.5], [[0.3333333432674408, 0.3333333432674408]])
    """
    rows = np.asarray(rows, dtype=np.int64)
    new_timestamps = np.asarray(new_timestamps, dtype=np.float64)
    moved = advance_reference_times(state, rows, new_timestamps, half_life_seconds)
    sums, counts, references = moved.sums, moved.weighted_counts, moved.reference_times
    old_coefficients = np.asarray(old_coefficients, dtype=np.float64)
    new_coefficients = np.asarray(new_coefficients, dtype=np.float64)
    old_present, new_present = old_coefficients != 0, new_coefficients != 0
    old_factors = np.where(
        old_present, recency_factors(old_timestamps, references[rows], half_life_seconds), 0.0
    )
    new_factors = recency_factors(new_timestamps, references[rows], half_life_seconds)
    vectors = np.asarray(item_vectors, dtype=np.float64)
    # As in apply_coefficient_changes: subtract the old term, then add the new one.
    np.add.at(sums, rows, (-(old_coefficients * old_factors)[:, None] * vectors).astype(sums.dtype))
    np.add.at(sums, rows, ((new_coefficients * new_factors)[:, None] * vectors).astype(sums.dtype))
    np.add.at(counts, rows, -old_factors)
    np.add.at(counts, rows, np.where(new_present, new_factors, 0.0))
    nonzero = moved.nonzero_counts
    np.add.at(nonzero, rows, new_present.astype(np.int64) - old_present.astype(np.int64))
    # An emptied set is exactly empty, not the float rounding its removed terms left behind.
    emptied = nonzero == 0
    sums[emptied] = 0.0
    counts[emptied] = 0.0
    return RecencyPooledSums(sums, counts, nonzero, references)
