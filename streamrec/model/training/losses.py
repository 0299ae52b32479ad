"""Training losses: the triplet loss on profiles and the cluster-health terms.

>>> import torch
>>> anchors = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
>>> float(triplet_loss(anchors, anchors + 0.1, margin=1.0, distance="l2"))
0.0
>>> float(membership_balance(torch.tensor([[1.0, 0.0], [0.0, 1.0]])))
0.0
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as functional

Distance = Literal["l2", "cosine"]
# Keeps logarithms of memberships finite.
EPSILON = 1e-8


def pairwise_distances(
    first: torch.Tensor, second: torch.Tensor, distance: Distance
) -> torch.Tensor:
    if distance == "cosine":
        return 1.0 - functional.normalize(first, dim=1) @ functional.normalize(second, dim=1).T
    squared = (
        first.pow(2).sum(1, keepdim=True) - 2.0 * first @ second.T + second.pow(2).sum(1)[None, :]
    )
    # The epsilon keeps the gradient of the square root finite at zero distance.
    return squared.clamp(min=0.0).add(1e-12).sqrt()


def triplet_loss(
    anchors: torch.Tensor, positives: torch.Tensor, margin: float, distance: Distance
) -> torch.Tensor:
    """The mean of ``triplet_terms``."""
    return triplet_terms(anchors, positives, margin, distance).mean()


def triplet_terms(
    anchors: torch.Tensor, positives: torch.Tensor, margin: float, distance: Distance
) -> torch.Tensor:
    """max(margin + d(a, p) - d(a, n), 0) for each anchor, with semi-hard negatives.

    Row i of ``anchors`` and ``positives`` are two views of one user; the negatives of anchor i
    are every other user's views. The semi-hard negative is the closest one farther than the
    positive; when none is, the farthest negative is taken (as FaceNet and TF-Addons do), so
    early training is not dominated by negatives it cannot yet separate. A batch of one user
    has no negatives and no loss.

    >>> anchors = torch.tensor([[0.0], [1.5], [3.0], [0.5]])
    >>> positives = torch.tensor([[1.0], [100.0], [200.0], [2.0]])
    >>> float(triplet_terms(anchors, positives, 1.0, "l2")[0])  # semi-hard 1.5, not 0.5
    0.5
    """
    users = anchors.shape[0]
    candidates = torch.cat([positives, anchors])
    distances = pairwise_distances(anchors, candidates, distance)
    positive_distance = distances[torch.arange(users), torch.arange(users)]
    own = torch.zeros_like(distances, dtype=torch.bool)
    own[torch.arange(users), torch.arange(users)] = True
    own[torch.arange(users), torch.arange(users) + users] = True
    negative_distances = distances.masked_fill(own, float("inf"))
    beyond_positive = negative_distances > positive_distance[:, None]
    semi_hard = negative_distances.masked_fill(~beyond_positive, float("inf")).min(dim=1).values
    farthest = distances.masked_fill(own, float("-inf")).max(dim=1).values
    negative_distance = torch.where(torch.isfinite(semi_hard), semi_hard, farthest)
    terms = functional.relu(margin + positive_distance - negative_distance)
    return torch.where(torch.isfinite(negative_distance), terms, torch.zeros_like(terms))


def normalised(memberships: torch.Tensor) -> torch.Tensor:
    """Memberships as a distribution over clusters (the sigmoid head's do not sum to 1)."""
    return memberships / memberships.sum(dim=1, keepdim=True).clamp(min=EPSILON)


def membership_balance(memberships: torch.Tensor) -> torch.Tensor:
    """KL(mean membership || uniform): zero when the batch spreads evenly over the clusters,
    large when the users clump into a few."""
    mean = normalised(memberships).mean(dim=0)
    clusters = memberships.shape[1]
    return (mean * torch.log(mean.clamp(min=EPSILON) * clusters)).sum()


def membership_consistency(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy between the memberships of two views of the same users: low
    when both halves of a user's set land confidently in the same clusters."""
    first, second = normalised(first), normalised(second)
    cross = first * torch.log(second.clamp(min=EPSILON)) + second * torch.log(
        first.clamp(min=EPSILON)
    )
    return -0.5 * cross.sum(dim=1).mean()


def retrieval_loss(
    queries: torch.Tensor,
    item_vectors: torch.Tensor,
    targets: torch.Tensor,
    hidden: torch.Tensor,
    logit_offsets: torch.Tensor | None = None,
    weight_by_targets: bool = False,
) -> torch.Tensor:
    """Multinomial log-likelihood of each user's target items under a softmax over the given
    items (queries @ item_vectors.T), with the ``hidden`` items (the user's input view, when
    the other half is what the profile should predict) out of the softmax. ``logit_offsets``
    (one per item) are added to the logits: minus the log of each item's sampling
    probability corrects a softmax over sampled items towards the full one (Yi et al., 2019).
    Each user's loss is the mean over their targets; the users count equally, or, with
    ``weight_by_targets``, in proportion to their number of targets (Mult-DAE's sum over a
    user's items), scaled so that the loss keeps the same size.

    >>> queries, vectors = torch.tensor([[1.0, 0.0]]), torch.tensor([[5.0, 0.0], [-5.0, 0.0]])
    >>> hidden = torch.tensor([[False, False]])
    >>> round(float(retrieval_loss(queries, vectors, torch.tensor([[1.0, 0.0]]), hidden)), 4)
    0.0
    >>> offsets = torch.tensor([0.0, 20.0])  # the second item was sampled e^-20 times as often
    >>> round(float(retrieval_loss(queries, vectors, torch.tensor([[1.0, 0.0]]), hidden,
    ...                            offsets)), 4)
    10.0
    >>> targets = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # the second user has two targets
    >>> two_users = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    >>> none_hidden = torch.zeros(2, 2, dtype=torch.bool)
    >>> equal = retrieval_loss(two_users, vectors, targets, none_hidden)
    >>> by_targets = retrieval_loss(two_users, vectors, targets, none_hidden,
    ...                             weight_by_targets=True)
    >>> round(float(equal), 2), round(float(by_targets), 2)  # (0 + 5) / 2, (0 + 2 * 5) / 3
    (2.5, 3.33)
    """
    logits = queries @ item_vectors.T
    if logit_offsets is not None:
        logits = logits + logit_offsets[None, :]
    logits = logits.masked_fill(hidden, float("-inf"))
    log_probabilities = torch.log_softmax(logits, dim=1).masked_fill(hidden, 0.0)
    per_user_sums = -(targets * log_probabilities).sum(dim=1)
    target_counts = targets.sum(dim=1)
    if weight_by_targets:
        # Every target of the batch counts once: a user counts as much as their targets.
        return per_user_sums.sum() / target_counts.sum().clamp(min=1.0)
    return (per_user_sums / target_counts.clamp(min=1.0)).mean()


def gaussian_kl(means: torch.Tensor, log_variances: torch.Tensor) -> torch.Tensor:
    """KL(N(means, exp(log_variances)) || N(0, I)), summed over dimensions, mean over rows:
    the prior term of a variational autoencoder.

    >>> float(gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2)))
    0.0
    """
    terms = log_variances.exp() + means.pow(2) - 1.0 - log_variances
    return 0.5 * terms.sum(dim=1).mean()
