"""Baseline recommenders for the offline protocols: popularity, item-kNN, EASE and ALS.

All four see the training interactions as a binary user-item matrix (an interaction is a 1,
whatever its weight), score every training item for a batch of user histories, and never
return an item from the history. Users unseen in training are served by folding them in: their
history row is all these models need (ALS solves one small least-squares problem per user).

>>> from streamrec.model.interaction_table import InteractionTable
>>> train = InteractionTable.from_rows(
...     [("u1", "a", 1.0, 0.0, None), ("u1", "b", 1.0, 1.0, None), ("u2", "b", 1.0, 2.0, None)])
>>> from streamrec.model.history import UserHistory
>>> popularity = PopularityRecommender()
>>> popularity.fit(train, {}, {})
>>> popularity.recommend_many([UserHistory("new", [("a", 1.0)])], n=5)
[['b']]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sparse
from scipy.linalg import lapack

from streamrec.events import ItemEvent
from streamrec.model.history import UserHistory
from streamrec.model.interaction_table import InteractionTable

DEFAULT_BATCH_SIZE = 256
# Above this share of non-zeros a sparse similarity matrix is cheaper to keep dense.
_DENSE_ABOVE = 0.1
_SYMMETRIC_FILL_BLOCK = 1024


class ItemScoringRecommender(ABC):
    """A recommender that scores all training items at once for a batch of histories."""

    name: str = "abstract"

    def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.batch_size = batch_size
        self._item_ids: list[str] = []
        self._item_columns: dict[str, int] = {}

    def fit(
        self,
        train: InteractionTable,
        items: Mapping[str, ItemEvent],
        user_attributes: Mapping[str, Mapping[str, str]],
    ) -> None:
        used_items, columns = np.unique(train.items, return_inverse=True)
        used_users, rows = np.unique(train.users, return_inverse=True)
        if used_items.size == 0:
            raise ValueError(f"{self.name}: no training interactions")
        self._item_ids = [train.item_vocabulary[item] for item in used_items]
        self._item_columns = {item_id: column for column, item_id in enumerate(self._item_ids)}
        matrix = sparse.csr_matrix(
            (np.ones(len(train), dtype=np.float32), (rows, columns)),
            shape=(used_users.size, used_items.size),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # binary, even if a pair occurs twice
        self._fit_matrix(matrix)

    def recommend_many(self, histories: Sequence[UserHistory], n: int) -> list[list[str]]:
        recommendations: list[list[str]] = []
        for start in range(0, len(histories), self.batch_size):
            seen = self._history_matrix(histories[start : start + self.batch_size])
            scores = np.array(self._score(seen), dtype=np.float32)
            scores[seen.nonzero()] = -np.inf
            recommendations.extend(self._top(scores, n))
        return recommendations

    @abstractmethod
    def parameter_count(self) -> int: ...

    @abstractmethod
    def _fit_matrix(self, matrix: sparse.csr_matrix) -> None:
        """Learn from the binary (training users x training items) matrix."""

    @abstractmethod
    def _score(self, seen: sparse.csr_matrix) -> np.ndarray:
        """Scores (batch x training items) for the binary history rows in seen."""

    def _history_matrix(self, histories: Sequence[UserHistory]) -> sparse.csr_matrix:
        rows: list[int] = []
        columns: list[int] = []
        for row, history in enumerate(histories):
            for item_id, _ in history.interactions:
                column = self._item_columns.get(item_id)
                if column is not None:  # items unknown to training cannot be scored
                    rows.append(row)
                    columns.append(column)
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)),
            shape=(len(histories), len(self._item_ids)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def _top(self, scores: np.ndarray, n: int) -> list[list[str]]:
        count = min(n, scores.shape[1])
        if count <= 0:
            return [[] for _ in range(scores.shape[0])]
        candidates = np.argpartition(-scores, count - 1, axis=1)[:, :count]
        candidate_scores = np.take_along_axis(scores, candidates, axis=1)
        order = np.argsort(-candidate_scores, axis=1, kind="stable")
        ranked = np.take_along_axis(candidates, order, axis=1)
        ranked_scores = np.take_along_axis(candidate_scores, order, axis=1)
        return [
            [
                self._item_ids[column]
                for column, score in zip(row, row_scores, strict=True)
                if score > -np.inf
            ]
            for row, row_scores in zip(ranked, ranked_scores, strict=True)
        ]


class PopularityRecommender(ItemScoringRecommender):
    """The items most training users interacted with."""

    name = "popularity"

    def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(batch_size)
        self._counts = np.zeros(0, dtype=np.float32)

    def parameter_count(self) -> int:
        return 0

    def _fit_matrix(self, matrix: sparse.csr_matrix) -> None:
        self._counts = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()

    def _score(self, seen: sparse.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self._counts, (seen.shape[0], self._counts.size))


class ItemKNNRecommender(ItemScoringRecommender):
    """Item-item cosine similarity over the binary matrix; a user's score for j is the sum of
    j's similarities to the user's items. ``neighbours`` keeps only each item's most similar
    items (None: keep all)."""

    name = "item-knn"

    def __init__(self, neighbours: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(batch_size)
        self.neighbours = neighbours
        self._similarity: sparse.csr_matrix | np.ndarray = np.zeros((0, 0), dtype=np.float32)

    def parameter_count(self) -> int:
        return 0  # similarities are counted, not learned

    def _fit_matrix(self, matrix: sparse.csr_matrix) -> None:
        norms = np.sqrt(np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel())
        normalised = (matrix @ sparse.diags(1.0 / np.maximum(norms, 1e-12))).tocsc()
        similarity = (normalised.T @ normalised).tocsr().astype(np.float32)
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        if self.neighbours is not None:
            similarity = _keep_top_per_row(similarity, self.neighbours)
        density = similarity.nnz / max(1, similarity.shape[0] * similarity.shape[1])
        # Similarity is symmetric before pruning; rows index the history items.
        self._similarity = similarity.toarray() if density > _DENSE_ABOVE else similarity

    def _score(self, seen: sparse.csr_matrix) -> np.ndarray:
        scores = seen @ self._similarity
        return scores.toarray() if sparse.issparse(scores) else np.asarray(scores)


class EASERecommender(ItemScoringRecommender):
    """EASE (Steck, WWW 2019): B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1, zero
    diagonal; scores = history @ B. float32, inverted through a Cholesky factorisation."""

    name = "ease"

    def __init__(self, regularization: float = 300.0, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(batch_size)
        if regularization <= 0:
            raise ValueError("EASE regularization must be positive")
        self.regularization = regularization
        self._weights = np.zeros((0, 0), dtype=np.float32)

    def parameter_count(self) -> int:
        return int(self._weights.size)

    def _fit_matrix(self, matrix: sparse.csr_matrix) -> None:
        self._weights = ease_weights(matrix, self.regularization)

    def _score(self, seen: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(seen @ self._weights)


class ALSRecommender(ItemScoringRecommender):
    """Implicit-feedback ALS from the ``implicit`` library (CPU); users unseen in training are
    folded in by recalculating their factors from their history against fixed item factors."""

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 0,
        threads: int = 1,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(batch_size)
        # Imported here: implicit is an optional dependency and the import fails without it.
        from implicit.cpu.als import AlternatingLeastSquares

        self._model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
            num_threads=threads,
        )

    def parameter_count(self) -> int:
        # Training users' factors are not kept for serving: any user is folded in.
        return int(np.asarray(self._model.item_factors).size)

    def _fit_matrix(self, matrix: sparse.csr_matrix) -> None:
        from threadpoolctl import threadpool_limits

        # implicit's own advice: its threads and a multithreaded BLAS fight each other.
        with threadpool_limits(1, "blas"):
            self._model.fit(matrix, show_progress=False)

    def _score(self, seen: sparse.csr_matrix) -> np.ndarray:
        user_factors = self._model.recalculate_user(np.arange(seen.shape[0]), seen)
        return np.asarray(user_factors) @ np.asarray(self._model.item_factors).T


def ease_weights(matrix: sparse.csr_matrix, regularization: float) -> np.ndarray:
    """EASE's item-item weights B (items x items, float32, zero diagonal) of a binary
    (users x items) matrix: B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1.

    >>> weights = ease_weights(sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 1]])), 1.0)
    >>> weights.shape, float(weights[0, 0]), bool(weights[1, 0] > 0)
    ((3, 3), 0.0, True)
    """
    gram = (matrix.T @ matrix).toarray().astype(np.float32, copy=False)
    gram[np.diag_indices_from(gram)] += regularization
    precision = symmetric_positive_definite_inverse(gram)
    diagonal = np.diag(precision).copy()
    precision /= -diagonal[np.newaxis, :]
    precision[np.diag_indices_from(precision)] = 0.0
    return precision


def symmetric_positive_definite_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite float32 matrix, computed in place (the input
    is overwritten) through LAPACK potrf/potri: a third of the work of a general inverse.

    >>> matrix = np.array([[4.0, 1.0], [1.0, 3.0]], dtype=np.float32)
    >>> expected = np.linalg.inv(matrix)
    >>> bool(np.allclose(symmetric_positive_definite_inverse(matrix), expected))
    True
    """
    # The transpose of a C-ordered symmetric matrix is the same matrix in Fortran order, which
    # LAPACK can overwrite without a copy.
    factor, info = lapack.spotrf(matrix.T, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ValueError(f"matrix is not positive definite (potrf info {info})")
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"inverse failed (potri info {info})")
    # potri fills the upper triangle only; mirror it in blocks to avoid a full-size copy.
    size = inverse.shape[0]
    for start in range(0, size, _SYMMETRIC_FILL_BLOCK):
        stop = min(size, start + _SYMMETRIC_FILL_BLOCK)
        block = inverse[start:stop, start:stop]
        inverse[start:stop, start:stop] = np.triu(block) + np.triu(block, 1).T
        inverse[stop:, start:stop] = inverse[start:stop, stop:].T
    # Symmetric, so the C-ordered transpose view holds the same matrix; row-major rows make
    # sparse @ dense products fast.
    return inverse if inverse.flags.c_contiguous else inverse.T


def _keep_top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    rows, columns, values = [], [], []
    for row in range(matrix.shape[0]):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        row_values = matrix.data[start:stop]
        chosen = np.argsort(-row_values, kind="stable")[:keep]
        rows.append(np.full(chosen.size, row))
        columns.append(matrix.indices[start:stop][chosen])
        values.append(row_values[chosen])
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=matrix.shape,
    )
