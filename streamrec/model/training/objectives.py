"""What the retrieval loss is computed over, and the two regularisers of its input and output.

Three choices of ``TrainingSettings`` change the objective without changing the served model:

- ``retrieval_negatives``: the softmax runs over the step's items ("batch", sampled in
  proportion to their popularity) or over every training item ("catalogue", the full
  multinomial likelihood of Mult-DAE/VAE);
- ``popularity_correction``: a batch softmax subtracts each item's log frequency from its
  logit (logQ correction), so popular items are not pushed down for being sampled often;
- ``input_dropout`` hides a share of each view's interactions from its encoder (denoising);
- ``variational_weight`` trains on noisy profiles z + sigma(z) * eps with a KL prior, as a
  VAE does; ``ProfileNoise`` is a training-only head, so serving still uses z itself.

>>> import numpy as np
>>> kept = kept_rows(np.array([0, 0, 0, 1]), 0.9, np.random.default_rng(0))
>>> bool(kept[3]), int(kept[:3].sum()) >= 1  # every view keeps at least one row
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from streamrec.config import TrainingSettings
from streamrec.events import ItemEvent
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import ItemInputs
from streamrec.model.training.losses import gaussian_kl
from streamrec.model.training.sampler import UserBatch, UserSampler

# Profiles start almost noiseless: exp(-6 / 2) ~ 0.05 standard deviation.
INITIAL_LOG_VARIANCE = -6.0


@dataclass(frozen=True)
class StepItems:
    """One step's item vectors: ``pooled`` (h_j of each batch item, for pooling), the
    softmax's ``candidates`` (t_j), each batch item's ``column`` among the candidates and the
    candidates' ``logit_offsets`` (or None)."""

    pooled: torch.Tensor
    candidates: torch.Tensor
    column: np.ndarray
    logit_offsets: torch.Tensor | None


class RetrievalCandidates:
    """Builds each step's ``StepItems`` from the settings and the sampler's catalogue."""

    def __init__(
        self,
        model: EfficientRec,
        sampler: UserSampler,
        items: Mapping[str, ItemEvent],
        settings: TrainingSettings,
    ) -> None:
        self.model = model
        self.items = items
        # Featurised once: the full softmax embeds every item at every step. The catalogue is
        # read only by the objectives that need it.
        self.catalogue_inputs: ItemInputs | None = None
        self.minus_log_frequencies: torch.Tensor | None = None
        if settings.retrieval_negatives == "catalogue":
            self.catalogue_inputs = model.featurizer.featurize(sampler.catalogue.items, items)
        elif settings.popularity_correction:
            # An item no training user has is never sampled; the floor keeps its log finite.
            frequencies = np.maximum(sampler.catalogue.frequencies, np.finfo(np.float32).tiny)
            self.minus_log_frequencies = torch.from_numpy(-np.log(frequencies).astype(np.float32))

    def for_batch(self, batch: UserBatch) -> StepItems:
        encoder = self.model.encoder
        if self.catalogue_inputs is None:
            vectors, targets = encoder.item_embeddings(
                self.model.featurizer.featurize(batch.items, self.items)
            )
            offsets = None
            if self.minus_log_frequencies is not None:
                offsets = self.minus_log_frequencies[_catalogue_rows(batch)]
            return StepItems(vectors, targets, np.arange(len(batch.items)), offsets)
        vectors, targets = encoder.item_embeddings(self.catalogue_inputs)
        rows = _catalogue_rows(batch)
        return StepItems(vectors[torch.from_numpy(rows)], targets, rows, None)


def _catalogue_rows(batch: UserBatch) -> np.ndarray:
    if batch.catalogue_rows is None:
        raise ValueError("this objective needs a sampler that places items in its catalogue")
    return batch.catalogue_rows


def kept_rows(bag_of_row: np.ndarray, dropout: float, generator: np.random.Generator) -> np.ndarray:
    """A mask of the rows each bag keeps when each is dropped with probability ``dropout``;
    a bag that would lose every row keeps its first one, so no view is empty."""
    kept = generator.random(len(bag_of_row)) >= dropout
    bags, first_rows = np.unique(bag_of_row, return_index=True)
    kept_per_bag = np.bincount(bag_of_row[kept], minlength=int(bags.max(initial=-1)) + 1)
    kept[first_rows[kept_per_bag[bags] == 0]] = True
    return kept


class ProfileNoise(torch.nn.Module):
    """A training-only head: the log-variance of each profile's Gaussian, from the profile.

    >>> noise = ProfileNoise(4)
    >>> noisy, kl = noise(torch.zeros(2, 4))
    >>> tuple(noisy.shape), float(kl) > 0
    ((2, 4), True)
    """

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.log_variance = torch.nn.Linear(dimension, dimension)
        torch.nn.init.zeros_(self.log_variance.weight)
        torch.nn.init.constant_(self.log_variance.bias, INITIAL_LOG_VARIANCE)

    def forward(self, profiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_variances = self.log_variance(profiles)
        noise = torch.randn_like(profiles) * torch.exp(0.5 * log_variances)
        return profiles + noise, gaussian_kl(profiles, log_variances)
