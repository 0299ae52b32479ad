"""The training loop: triplet loss on profiles of two disjoint halves of a user's set, plus
cluster-health terms, over users sampled per step.

Each step samples ``users_per_step`` users, splits each user's interactions at random into
halves A and B, and pools and encodes both: z(A) is the anchor, z(B) the positive, every other
user's views are negatives (semi-hard mining). The health terms keep clusters from collapsing
or clumping: balance of the mean membership, consistency of the two halves' memberships, and
the centroid head's own pull/push loss. The cost of a step does not depend on how many users
exist.

>>> from streamrec.config import ModelSettings, TrainingSettings
>>> from streamrec.model.interaction_table import InteractionTable
>>> from streamrec.model.features import FeatureSchema
>>> table = InteractionTable.from_rows(
...     (f"u{user}", f"i{(user * 7 + step) % 30}", 1.0, float(step), None)
...     for user in range(40) for step in range(6))
>>> model = EfficientRec.new(ModelSettings(hash_buckets=256, clusters=4), FeatureSchema())
>>> report = train(model, InMemoryUserSampler(table), {},
...                TrainingSettings(users_per_step=16), steps=3)
>>> report.steps, len(report.losses)
(3, 3)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch

from streamrec.config import TrainingSettings
from streamrec.events import ItemEvent
from streamrec.model.cluster_report import ClusterReport, cluster_report
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.pooling import bag_recency_factors, pool_bags
from streamrec.model.training.losses import (
    membership_balance,
    membership_consistency,
    retrieval_loss,
    triplet_loss,
)
from streamrec.model.training.objectives import (
    ProfileNoise,
    RetrievalCandidates,
    StepItems,
    kept_rows,
)
from streamrec.model.training.sampler import InMemoryUserSampler, UserBatch, UserSampler

__all__ = ["InMemoryUserSampler", "TrainingObserver", "TrainingReport", "fine_tune", "train"]

# Users encoded (whole sets) at the end of training to report cluster health.
REPORT_BATCHES = 4
PROGRESS_EVERY = 10


@dataclass(frozen=True)
class StepLosses:
    total: float
    triplet: float
    balance: float
    consistency: float
    structure: float
    retrieval: float
    # KL term of the noisy profiles (TrainingSettings.variational_weight); 0 when off.
    variational: float = 0.0


@dataclass(frozen=True)
class TrainingReport:
    steps: int
    seconds: float
    losses: list[StepLosses]
    clusters: ClusterReport

    def to_dict(self) -> dict[str, Any]:
        last = self.losses[-PROGRESS_EVERY:]
        return {
            "steps": self.steps,
            "seconds": self.seconds,
            "final_losses": {
                name: float(np.mean([getattr(losses, name) for losses in last]))
                for name in StepLosses.__dataclass_fields__
            },
            "clusters": self.clusters.to_dict(),
        }


class TrainingObserver(Protocol):
    """Watches a training run (a progress bar, a log); the loop itself shows nothing.

    ``stepped`` gets the step's losses, and every ``PROGRESS_EVERY`` steps (and at the last)
    the cluster health of that step's users; None in between, because measuring it costs.
    """

    def started(self, steps: int) -> None: ...

    def stepped(self, step: int, losses: StepLosses, clusters: ClusterReport | None) -> None: ...

    def finished(self, report: TrainingReport) -> None: ...


def train(
    model: EfficientRec,
    sampler: UserSampler,
    items: Mapping[str, ItemEvent],
    settings: TrainingSettings,
    steps: int | None = None,
    top_memberships: int = 5,
    observer: TrainingObserver | None = None,
    initialise_clusters: bool = True,
    pooling_half_life_seconds: float | None = None,
) -> TrainingReport:
    """Train ``model`` in place for ``steps`` (default: settings.steps) and report.
    ``initialise_clusters`` starts the cluster head from the first batch's profiles (from
    scratch); a fine-tune keeps the clusters it has. ``pooling_half_life_seconds``
    (``model.pooling_half_life_seconds``) pools every view with the recency weights serving
    uses, each view's reference time its newest non-zero interaction; the sampler must then
    give timestamps."""
    steps = settings.steps if steps is None else steps
    generator = np.random.default_rng(settings.seed)
    encoder = model.encoder
    candidates = RetrievalCandidates(model, sampler, items, settings)
    noise = (
        ProfileNoise(model.architecture.profile_dim) if settings.variational_weight > 0 else None
    )
    optimisers = _optimisers(model, settings.learning_rate, noise)
    # Cosine decay to zero: large steps early, a settled model at the end.
    schedules = [
        torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps))
        )
        for optimiser in optimisers
    ]
    history: list[StepLosses] = []
    started = time.perf_counter()
    encoder.train()
    if observer is not None:
        observer.started(steps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        for step in range(steps):
            batch = sampler(settings.users_per_step, generator)
            if step == 0 and initialise_clusters:
                _initialise_clusters(model, batch, items, settings.seed, pooling_half_life_seconds)
            # The KL weight rises from 0 to its setting over the run, as Mult-VAE anneals it.
            losses, memberships = _step(
                model,
                batch,
                candidates.for_batch(batch),
                settings,
                generator,
                pooling_half_life_seconds,
                noise,
                settings.variational_weight * step / steps,
            )
            for optimiser in optimisers:
                optimiser.zero_grad(set_to_none=True)
            losses["total"].backward()
            for optimiser, schedule in zip(optimisers, schedules, strict=True):
                optimiser.step()
                schedule.step()
            history.append(StepLosses(**{name: value.item() for name, value in losses.items()}))
            if observer is not None:
                health = (
                    cluster_report(memberships.detach().numpy(), top_memberships)
                    if step % PROGRESS_EVERY == 0 or step == steps - 1
                    else None
                )
                observer.stepped(step, history[-1], health)
    encoder.eval()
    report = TrainingReport(
        steps=steps,
        seconds=time.perf_counter() - started,
        losses=history,
        clusters=_final_clusters(
            model,
            sampler,
            items,
            settings,
            generator,
            top_memberships,
            pooling_half_life_seconds,
        ),
    )
    if observer is not None:
        observer.finished(report)
    return report


def fine_tune(
    model: EfficientRec,
    sampler: UserSampler,
    items: Mapping[str, ItemEvent],
    settings: TrainingSettings,
    top_memberships: int = 5,
    observer: TrainingObserver | None = None,
    pooling_half_life_seconds: float | None = None,
) -> tuple[EfficientRec, TrainingReport]:
    """A copy of ``model`` trained for settings.fine_tune_steps; the original is untouched,
    so it keeps serving while the candidate is judged."""
    candidate = model.copy()
    report = train(
        candidate,
        sampler,
        items,
        settings,
        settings.fine_tune_steps,
        top_memberships,
        observer,
        initialise_clusters=False,
        pooling_half_life_seconds=pooling_half_life_seconds,
    )
    return candidate, report


@torch.no_grad()
def _initialise_clusters(
    model: EfficientRec,
    batch: UserBatch,
    items: Mapping[str, ItemEvent],
    seed: int,
    half_life_seconds: float | None,
) -> None:
    encoded = model.encode_histories(
        _histories(batch),
        batch.attributes,
        items,
        recency=_user_recency(model, batch, half_life_seconds),
    )
    generator = torch.Generator().manual_seed(seed)
    model.encoder.cluster_head.initialise(torch.from_numpy(encoded.profiles), generator)


def _histories(batch: UserBatch) -> list[tuple[list[str], list[float]]]:
    return [
        (
            [batch.items[row] for row in batch.item_rows[start:end]],
            batch.weights[start:end].tolist(),
        )
        for start, end in zip(batch.offsets[:-1], batch.offsets[1:], strict=True)
    ]


def _row_recency(
    model: EfficientRec,
    batch: UserBatch,
    bag_of_row: np.ndarray,
    bags: int,
    half_life: float,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Recency factors of the batch's ``rows`` (default: all), each bag's reference its
    newest non-zero row among them; ``bag_of_row`` gives the bag of each of those rows."""
    if batch.timestamps is None:
        raise ValueError("recency-weighted pooling needs a sampler that gives timestamps")
    chosen = slice(None) if rows is None else rows
    coefficients = model.pooling_coefficients(batch.weights[chosen])
    return bag_recency_factors(batch.timestamps[chosen], bag_of_row, coefficients, bags, half_life)


def _user_recency(
    model: EfficientRec, batch: UserBatch, half_life_seconds: float | None
) -> list[np.ndarray] | None:
    """Per-user factors for encode_histories (whole sets), or None without a half-life."""
    if half_life_seconds is None:
        return None
    sizes = np.diff(batch.offsets)
    user_of_row = np.repeat(np.arange(batch.users), sizes)
    factors = _row_recency(model, batch, user_of_row, batch.users, half_life_seconds)
    return np.split(factors, batch.offsets[1:-1])


def _optimisers(
    model: EfficientRec, learning_rate: float, noise: ProfileNoise | None
) -> list[torch.optim.Optimizer]:
    sparse = [model.encoder.item_tower.id_embedding.weight]
    dense = [parameter for parameter in model.encoder.parameters() if parameter is not sparse[0]]
    if noise is not None:
        dense += list(noise.parameters())
    return [
        torch.optim.SparseAdam(sparse, lr=learning_rate),
        torch.optim.Adam(dense, lr=learning_rate),
    ]


def _step(
    model: EfficientRec,
    batch: UserBatch,
    step_items: StepItems,
    settings: TrainingSettings,
    generator: np.random.Generator,
    half_life_seconds: float | None,
    noise: ProfileNoise | None,
    variational_weight: float,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    encoder = model.encoder
    users = batch.users
    half_bags, next_rows = _half_bags(batch, generator, settings.retrieval_split)
    # Denoising: each view is encoded from a random part of its half.
    rows = (
        np.flatnonzero(kept_rows(half_bags, settings.input_dropout, generator))
        if settings.input_dropout > 0
        else np.arange(len(half_bags))
    )
    # Each half is pooled as serving would pool a user whose history is that half.
    recency = (
        None
        if half_life_seconds is None
        else torch.from_numpy(
            _row_recency(model, batch, half_bags[rows], 2 * users, half_life_seconds, rows).astype(
                np.float32
            )
        )
    )
    pooled = pool_bags(
        step_items.pooled,
        torch.from_numpy(batch.item_rows[rows]),
        torch.from_numpy(half_bags[rows]),
        torch.from_numpy(model.pooling_coefficients(batch.weights[rows])),
        2 * users,
        recency,
    )
    # Only the anchor view may see demographics: if both views did, the loss could match a
    # user's halves by demographics alone and learn nothing from the interactions.
    shown = generator.random(users) < settings.attribute_rate
    attributes = [None] * (2 * users)
    for user in np.flatnonzero(shown):
        attributes[2 * user] = batch.attributes[user]
    profiles = encoder.profiles(pooled, model.attribute_bags(attributes))
    variational = profiles.new_zeros(())
    if noise is not None:
        profiles, variational = noise(profiles)
    memberships = encoder.memberships(profiles)
    anchors, positives = profiles[0::2], profiles[1::2]
    losses = {
        "triplet": triplet_loss(anchors, positives, settings.margin, settings.distance),
        "balance": membership_balance(memberships),
        "consistency": membership_consistency(memberships[0::2], memberships[1::2]),
        "structure": encoder.cluster_head.structure_loss(profiles, memberships),
        "retrieval": _retrieval(
            encoder.retrieval_queries(profiles), step_items, half_bags, batch, settings, next_rows
        )
        if settings.retrieval_weight > 0
        else profiles.new_zeros(()),
        "variational": variational,
    }
    health = (
        losses["balance"]
        + settings.consistency_weight * losses["consistency"]
        + losses["structure"]
    )
    losses["total"] = (
        losses["triplet"]
        + settings.balance_weight * health
        + settings.retrieval_weight * losses["retrieval"]
        + variational_weight * losses["variational"]
    )
    return losses, memberships


def _retrieval(
    queries: torch.Tensor,
    step_items: StepItems,
    half_bags: np.ndarray,
    batch: UserBatch,
    settings: TrainingSettings,
    next_rows: np.ndarray | None = None,
) -> torch.Tensor:
    """Each view predicts, among the step's candidates, the items of the user's other half
    (its own hidden from the softmax) or all of the user's items
    (``settings.retrieval_targets``). With ``next_rows`` (a split in time) the older view
    predicts only the item that came next, as a sequential recommender is asked to."""
    views = 2 * batch.users
    columns = step_items.column[batch.item_rows]
    in_view = np.zeros((views, step_items.candidates.shape[0]), dtype=bool)
    in_view[half_bags, columns] = True
    # View 2u's targets are view 2u + 1's items and the other way round.
    other_view = in_view.reshape(batch.users, 2, -1)[:, ::-1].reshape(views, -1)
    if settings.retrieval_targets == "whole_set":
        targets, hidden = in_view | other_view, np.zeros_like(in_view)
    else:
        targets, hidden = other_view, in_view & ~other_view
    if next_rows is not None:
        older = np.arange(0, views, 2)
        targets = targets.copy()
        targets[older] = False
        targets[older, columns[next_rows]] = True
        hidden = in_view & ~targets
    return retrieval_loss(
        queries,
        step_items.candidates,
        torch.from_numpy(targets.astype(np.float32)),
        torch.from_numpy(hidden),
        step_items.logit_offsets,
        weight_by_targets=settings.retrieval_user_weight == "targets",
    )


def _half_bags(
    batch: UserBatch, generator: np.random.Generator, split: Literal["random", "time"] = "random"
) -> tuple[np.ndarray, np.ndarray | None]:
    """For each row, its bag: 2u for the half A of user u, 2u + 1 for half B; both halves
    are non-empty. ``random``: each user's rows are shuffled and the first floor(n/2) go to
    A. ``time``: the rows in time order are cut at a random point, the older ones go to A,
    and the first row after the cut, the item that came next, is returned for each user
    (None for ``random``)."""
    sizes = np.diff(batch.offsets)
    user_of_row = np.repeat(np.arange(batch.users), sizes)
    tie_breaks = generator.random(len(user_of_row))
    if split == "time":
        if batch.timestamps is None:
            raise ValueError("a split in time needs a sampler that gives timestamps")
        order = np.lexsort((tie_breaks, batch.timestamps, user_of_row))
        # A cut after 1 to n - 1 rows, each equally likely.
        cuts = 1 + np.floor(generator.random(batch.users) * (sizes - 1)).astype(np.int64)
    else:
        order = np.lexsort((tie_breaks, user_of_row))
        cuts = sizes // 2
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - batch.offsets[user_of_row[order]]
    in_second_half = rank >= cuts[user_of_row]
    next_rows = np.flatnonzero(rank == cuts[user_of_row]) if split == "time" else None
    return 2 * user_of_row + in_second_half, next_rows


@torch.no_grad()
def _final_clusters(
    model: EfficientRec,
    sampler: UserSampler,
    items: Mapping[str, ItemEvent],
    settings: TrainingSettings,
    generator: np.random.Generator,
    top_memberships: int,
    half_life_seconds: float | None,
) -> ClusterReport:
    memberships = []
    for _ in range(REPORT_BATCHES):
        batch = sampler(settings.users_per_step, generator)
        encoded = model.encode_histories(
            _histories(batch),
            batch.attributes,
            items,
            recency=_user_recency(model, batch, half_life_seconds),
        )
        memberships.append(encoded.memberships)
    return cluster_report(np.concatenate(memberships), top_memberships)
