"""Mult-DAE and Mult-VAE (Liang et al., "Variational Autoencoders for Collaborative
Filtering", WWW 2018) as fold-in baselines.

Both read a user's binary item row, L2-normalised, with dropout 0.5 on it while training;
one tanh hidden layer of 600 between the items and a 200-dimensional code on each side; a
softmax over the items, trained by the multinomial log-likelihood of the user's items. The
VAE's code is a Gaussian whose KL term is weighted by beta, annealed linearly from 0 to 0.2
over the first ``anneal_epochs`` epochs and kept there; the DAE's weights carry the paper's
L2 penalty instead. Neither
has a parameter per user: a user never seen in training is scored by encoding their
history (the VAE takes the mean of its code).

Training is deterministic for a seed (its own torch generator state and a numpy generator
for the batches), and ``train_epochs`` continues it: a model trained e epochs in one call
equals one trained in several calls that add up to e, so a caller can measure after every
few epochs (``streamrec bench autoencoder-epochs`` chooses the epochs on validation users).

>>> from streamrec.model.interaction_table import InteractionTable
>>> from streamrec.model.history import UserHistory
>>> rows = [(f"u{user}", f"i{(user + step) % 12}", 1.0, float(step), None)
...         for user in range(30) for step in range(4)]
>>> vae = MultVAERecommender(epochs=2, hidden=8, latent=4, progress=False)
>>> vae.fit(InteractionTable.from_rows(rows), {}, {})
>>> recommended = vae.recommend_many([UserHistory("new", [("i0", 1.0)])], n=3)[0]
>>> len(recommended), "i0" in recommended, vae.epochs_trained
(3, False, 2)
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sparse
import torch
from torch import nn
from tqdm import tqdm

from streamrec.evaluation.baselines import DEFAULT_BATCH_SIZE, ItemScoringRecommender

# The paper's architecture and training settings.
HIDDEN = 600
LATENT = 200
DROPOUT = 0.5
TRAINING_BATCH = 500
LEARNING_RATE = 1e-3
BETA_CAP = 0.2
# The paper's DAE penalty lambda * sum of squared weights, lambda = 0.01 / batch size.
DAE_L2 = 0.01 / TRAINING_BATCH
DEFAULT_EPOCHS = 100
# Annealing does not depend on the number of epochs, so that training longer only continues.
DEFAULT_ANNEAL_EPOCHS = 50


class _Autoencoder(nn.Module):
    """items -> 600 -> code (200; mean and log-variance for the VAE) -> 600 -> items."""

    def __init__(self, items: int, hidden: int, latent: int, variational: bool) -> None:
        super().__init__()
        self.variational = variational
        self.latent = latent
        self.encoder_hidden = nn.Linear(items, hidden)
        self.encoder_code = nn.Linear(hidden, 2 * latent if variational else latent)
        self.decoder_hidden = nn.Linear(latent, hidden)
        self.decoder_items = nn.Linear(hidden, items)
        for layer in self.layers():
            # The paper's initialisation: Xavier weights, biases near zero.
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=1e-3)

    def layers(self) -> list[nn.Linear]:
        return [self.encoder_hidden, self.encoder_code, self.decoder_hidden, self.decoder_items]

    def forward(self, rows: sparse.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
        """(item logits, KL divergence per user; zeros for the DAE) for binary rows."""
        hidden = torch.tanh(self._first_layer(rows))
        code = self.encoder_code(hidden)
        kl = torch.zeros(rows.shape[0])
        if self.variational:
            mean, log_variance = code[:, : self.latent], code[:, self.latent :]
            if self.training:
                code = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
            else:
                code = mean
            kl = 0.5 * torch.sum(-log_variance + torch.exp(log_variance) + mean**2 - 1.0, dim=1)
        else:
            # The DAE's code is a hidden layer too: tanh, as between the paper's layers.
            code = torch.tanh(code)
        logits = self.decoder_items(torch.tanh(self.decoder_hidden(code)))
        return logits, kl

    def _first_layer(self, rows: sparse.csr_matrix) -> torch.Tensor:
        """The input layer on the L2-normalised rows (dropout while training), as a sparse
        product: a user has a few dozen items of thousands, and this layer's dense product
        would cost as much as the whole output layer."""
        coordinates = rows.tocoo()
        lengths = np.sqrt(np.asarray(rows.sum(axis=1), dtype=np.float32).ravel())
        values = torch.from_numpy(1.0 / np.maximum(lengths[coordinates.row], 1e-12))
        if self.training:
            kept = torch.rand(values.shape[0]) >= DROPOUT
            values = values * kept / (1.0 - DROPOUT)
        indices = torch.from_numpy(np.vstack([coordinates.row, coordinates.col]).astype(np.int64))
        normalised = torch.sparse_coo_tensor(
            indices, values.float(), rows.shape, check_invariants=False
        )
        layer = self.encoder_hidden
        return torch.sparse.mm(normalised, layer.weight.t()) + layer.bias


class MultAutoencoderRecommender(ItemScoringRecommender):
    """The training and scoring Mult-DAE and Mult-VAE share; see the module docstring."""

    name = "mult-autoencoder"
    variational = False

    def __init__(
        self,
        epochs: int = DEFAULT_EPOCHS,
        seed: int = 0,
        hidden: int = HIDDEN,
        latent: int = LATENT,
        training_batch: int = TRAINING_BATCH,
        anneal_epochs: int = DEFAULT_ANNEAL_EPOCHS,
        progress: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(batch_size)
        if epochs < 0:
            raise ValueError("epochs must be at least 0")
        self.epochs = epochs
        self.seed = seed
        self.hidden = hidden
        self.latent = latent
        self.training_batch = training_batch
        self.anneal_epochs = anneal_epochs
        self.progress = progress
        self.epochs_trained = 0
        self._steps_taken = 0
        self._matrix = sparse.csr_matrix((0, 0), dtype=np.float32)
        self._network: _Autoencoder | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._numpy_random = np.random.default_rng(seed)
        self._torch_state: torch.Tensor | None = None

    def parameter_count(self) -> int:
        if self._network is None:
            return 0
        return sum(parameter.numel() for parameter in self._network.parameters())

    def _fit_matrix(self, matrix: sparse.csr_matrix) -> None:
        self._matrix = matrix.astype(np.float32)
        self._numpy_random = np.random.default_rng(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._network = _Autoencoder(
                matrix.shape[1], self.hidden, self.latent, self.variational
            )
            self._torch_state = torch.random.get_rng_state()
        self._optimizer = torch.optim.Adam(self._network.parameters(), lr=LEARNING_RATE)
        self.epochs_trained = 0
        self._steps_taken = 0
        self.train_epochs(self.epochs)

    def train_epochs(self, epochs: int) -> None:
        """Train ``epochs`` more epochs."""
        network, optimizer = self._network, self._optimizer
        if network is None or optimizer is None or epochs <= 0:
            return
        users = self._matrix.shape[0]
        steps_per_epoch = math.ceil(users / self.training_batch)
        anneal_steps = max(1, steps_per_epoch * self.anneal_epochs)
        bar = tqdm(
            total=epochs,
            desc=f"{self.name}: training",
            unit="epoch",
            disable=not self.progress,
            leave=False,
        )
        network.train()
        with torch.random.fork_rng(devices=[]):
            # Continue the training's own random stream (dropout, the VAE's noise).
            torch.random.set_rng_state(self._torch_state)
            for _ in range(epochs):
                order = self._numpy_random.permutation(users)
                total = 0.0
                for start in range(0, users, self.training_batch):
                    rows = self._matrix[order[start : start + self.training_batch]]
                    beta = BETA_CAP * min(1.0, self._steps_taken / anneal_steps)
                    loss = self._loss(network, rows, beta)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    self._steps_taken += 1
                    total += loss.detach().item()
                self.epochs_trained += 1
                bar.update(1)
                bar.set_postfix({"loss": f"{total / steps_per_epoch:.2f}"})
            self._torch_state = torch.random.get_rng_state()
        bar.close()
        network.eval()

    def _loss(self, network: _Autoencoder, rows: sparse.csr_matrix, beta: float) -> torch.Tensor:
        logits, kl = network(rows)
        # The multinomial log-likelihood of the user's items under softmax(logits): the
        # log-probabilities of the items in each row, summed per user.
        coordinates = rows.tocoo()
        log_probabilities = torch.log_softmax(logits, dim=1)
        picked = log_probabilities[
            torch.from_numpy(coordinates.row), torch.from_numpy(coordinates.col)
        ]
        loss = -torch.sum(picked) / rows.shape[0]
        if self.variational:
            return loss + beta * torch.mean(kl)
        penalty = sum(torch.sum(layer.weight**2) for layer in network.layers())
        return loss + DAE_L2 * penalty

    @torch.no_grad()
    def _score(self, seen: sparse.csr_matrix) -> np.ndarray:
        if self._network is None:
            raise RuntimeError(f"{self.name}: fit first")
        logits, _ = self._network(seen)
        return logits.numpy()


class MultDAERecommender(MultAutoencoderRecommender):
    """Mult-DAE: the denoising autoencoder with the multinomial likelihood."""

    name = "mult-dae"
    variational = False


class MultVAERecommender(MultAutoencoderRecommender):
    """Mult-VAE: the variational autoencoder, KL weight annealed to 0.2."""

    name = "mult-vae"
    variational = True
