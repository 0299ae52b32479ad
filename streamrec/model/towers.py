"""The two towers of the encoder: items to vectors h_j (and retrieval targets t_j), pooled
users to profiles z_u.

Neither has a parameter per user or per item: ids and feature tokens are hashed into tables of
fixed size, so the parameter count depends only on the architecture.

>>> import torch
>>> from streamrec.config import ModelSettings
>>> from streamrec.model.architecture import Architecture
>>> from streamrec.model.features import FeatureSchema
>>> architecture = Architecture.from_settings(
...     ModelSettings(hash_buckets=64, item_dim=8, profile_dim=4, hidden_dim=16), FeatureSchema())
>>> tower = ItemTower(architecture)
>>> vectors, targets = tower(torch.tensor([[1, 2]]), torch.tensor([], dtype=torch.long),
...                          torch.tensor([0]), torch.zeros(1, 0))
>>> tuple(vectors.shape), tuple(targets.shape)
((1, 8), (1, 8))
"""

from __future__ import annotations

import torch
from torch import nn

from streamrec.model.architecture import Architecture

# Small initial id vectors: at the start an item's vector is mostly its features'.
ID_EMBEDDING_INIT_STD = 0.1


class ItemTower(nn.Module):
    """h_j = MLP([E(j); phi(v_j)]), E(j) the sum of two hashed id rows; values in (-1, 1)."""

    def __init__(self, architecture: Architecture) -> None:
        super().__init__()
        numeric_features = len(architecture.schema.numeric)
        # Sparse gradients: a step touches a few thousand of the table's rows, and a dense
        # optimiser update of the whole table would cost more than the rest of the step.
        self.id_embedding = nn.Embedding(
            architecture.hash_buckets, architecture.item_dim, sparse=True
        )
        nn.init.normal_(self.id_embedding.weight, std=ID_EMBEDDING_INIT_STD)
        self.token_embedding = nn.EmbeddingBag(
            architecture.feature_buckets, architecture.feature_dim, mode="mean"
        )
        self.hidden = nn.Sequential(
            nn.Linear(
                architecture.item_dim + architecture.feature_dim + numeric_features,
                architecture.hidden_dim,
            ),
            nn.ReLU(),
        )
        # Bounded vectors keep the pooled mean inside the clip range [-1, 1] of the method.
        self.vector = nn.Sequential(
            nn.Linear(architecture.hidden_dim, architecture.item_dim), nn.Tanh()
        )
        # A second, untied output: the item as a target of retrieval (what a profile predicts),
        # as opposed to h_j, the item as evidence of taste (what pooling sums).
        self.target = nn.Linear(architecture.hidden_dim, architecture.item_dim)

    def forward(
        self,
        id_buckets: torch.Tensor,
        token_buckets: torch.Tensor,
        token_offsets: torch.Tensor,
        numeric: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_j, target vector t_j) for each item."""
        identity = self.id_embedding(id_buckets).sum(dim=1)
        tokens = self.token_embedding(token_buckets, token_offsets)
        hidden = self.hidden(torch.cat([identity, tokens, numeric], dim=1))
        return self.vector(hidden), self.target(hidden)


class ProfileTower(nn.Module):
    """z_u = LayerNorm(MLP([x_u; emb(g_u)])); demographics are hashed "name=value" tokens."""

    def __init__(self, architecture: Architecture) -> None:
        super().__init__()
        self.attribute_embedding = nn.EmbeddingBag(
            architecture.feature_buckets, architecture.feature_dim, mode="mean"
        )
        self.mlp = nn.Sequential(
            nn.Linear(architecture.item_dim + architecture.feature_dim, architecture.hidden_dim),
            nn.ReLU(),
            nn.Linear(architecture.hidden_dim, architecture.profile_dim),
            nn.LayerNorm(architecture.profile_dim),
        )

    def forward(
        self, pooled: torch.Tensor, attribute_buckets: torch.Tensor, attribute_offsets: torch.Tensor
    ) -> torch.Tensor:
        attributes = self.attribute_embedding(attribute_buckets, attribute_offsets)
        return self.mlp(torch.cat([pooled, attributes], dim=1))
