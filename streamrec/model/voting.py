"""Recommending by cluster voting: the user's top-M clusters vote over their shortlists.

score(u, j) = sum over the user's top clusters c of p_uc * W_cj, over the union of their
shortlists, items in S_u dropped, top N kept. The cost is O(M * L): independent of the number
of users and of the catalogue. Optionally the candidates are re-ranked by the retrieval score
(P z_u) . t_j plus ``vote_weight`` times the log of their vote (docs/model.md measures both
parts). ``vote_many`` computes it for many users at once.

>>> import numpy as np
>>> shortlists = np.array([[0.9, 0.5, 0.0], [0.0, 0.8, 0.1]])  # clusters x items
>>> columns, scores = vote_many(shortlists, np.array([[1.0, 0.5]]), np.array([[True, False,
...                             False]]), count=2)
>>> columns.tolist(), scores.round(2).tolist()
([[1, 2]], [[0.9, 0.05]])
"""

from __future__ import annotations

import numpy as np

from streamrec.model.shortlists import NO_ITEM

# The vote a candidate with a zero (or negative) vote counts as when votes join the re-ranking.
SMALLEST_VOTE = 1e-9


def vote_many(
    dense_shortlists: np.ndarray,
    top_memberships: np.ndarray,
    exclude: np.ndarray,
    count: int,
    retrieval_scores: np.ndarray | None = None,
    vote_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The vote of many users: ``top_memberships`` (users x K, zero outside each top M)
    times ``dense_shortlists`` (K x items: each cluster's shortlist weights, zero elsewhere);
    ``exclude`` is a boolean (users x items) mask; ``retrieval_scores`` (users x items), if
    given, re-rank the candidates (``reranked_scores``); a row of NaN (a user without a
    profile) keeps its votes. Returns (item columns, scores), each (users x count),
    best first; NO_ITEM where there were fewer than ``count`` candidates."""
    votes = top_memberships @ dense_shortlists
    candidate = (np.abs(top_memberships) @ (dense_shortlists != 0)) > 0
    scores = votes
    if retrieval_scores is not None:
        reranked = reranked_scores(retrieval_scores, votes, vote_weight)
        scores = np.where(np.isnan(retrieval_scores), votes, reranked)
    scores = np.where(candidate & ~exclude, scores, -np.inf)
    taken = min(count, scores.shape[1])
    top = np.argpartition(-scores, taken - 1, axis=1)[:, :taken]
    values = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top, values = np.take_along_axis(top, order, 1), np.take_along_axis(values, order, 1)
    return np.where(np.isfinite(values), top, NO_ITEM), np.where(np.isfinite(values), values, 0.0)


def reranked_scores(retrieval: np.ndarray, votes: np.ndarray, vote_weight: float) -> np.ndarray:
    """The re-ranking score of candidates: retrieval + vote_weight * log(vote).

    The retrieval score says how well an item fits this user; the log of the clusters' vote
    adds how much the user's clusters rated it, a prior that matters most on sparse data
    (docs/model.md). A candidate's vote is positive with the default weights; a vote at or
    below zero counts as a tiny one rather than minus infinity, so it stays a candidate.

    >>> reranked_scores(np.array([1.0, 1.0]), np.array([1.0, np.e]), 0.5).round(3).tolist()
    [1.0, 1.5]
    """
    if vote_weight == 0.0:
        return retrieval
    return retrieval + vote_weight * np.log(np.maximum(votes, SMALLEST_VOTE))
