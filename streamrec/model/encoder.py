"""The EfficientRec encoder as one torch module: item tower, profile tower, cluster head.

Callers outside training normally use ``streamrec.model.EfficientRec``, which wraps this
module with numpy inputs and outputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamrec.model.architecture import Architecture
from streamrec.model.cluster_heads import ClusterHead, build_cluster_head
from streamrec.model.features import ItemInputs
from streamrec.model.towers import ItemTower, ProfileTower


class EfficientRecEncoder(nn.Module):
    def __init__(self, architecture: Architecture) -> None:
        super().__init__()
        self.architecture = architecture
        self.item_tower = ItemTower(architecture)
        self.profile_tower = ProfileTower(architecture)
        self.cluster_head: ClusterHead = build_cluster_head(architecture)
        # Maps a profile into item space: (P z_u) . h_j scores how likely u picks j next.
        self.retrieval = nn.Linear(architecture.profile_dim, architecture.item_dim, bias=False)

    def item_vectors(self, inputs: ItemInputs) -> torch.Tensor:
        return self.item_embeddings(inputs)[0]

    def item_embeddings(self, inputs: ItemInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_j, t_j): the vectors pooling sums and the targets retrieval scores."""
        return self.item_tower(
            torch.from_numpy(inputs.id_buckets),
            torch.from_numpy(inputs.token_buckets),
            torch.from_numpy(inputs.token_offsets),
            torch.from_numpy(inputs.numeric),
        )

    def profiles(
        self, pooled: torch.Tensor, attribute_bags: tuple[np.ndarray, np.ndarray]
    ) -> torch.Tensor:
        buckets, offsets = attribute_bags
        return self.profile_tower(pooled, torch.from_numpy(buckets), torch.from_numpy(offsets))

    def memberships(self, profiles: torch.Tensor) -> torch.Tensor:
        return self.cluster_head(profiles)

    def retrieval_queries(self, profiles: torch.Tensor) -> torch.Tensor:
        return self.retrieval(profiles)

    def parameter_count(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())
