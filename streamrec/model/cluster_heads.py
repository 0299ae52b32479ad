"""Soft-cluster heads: profiles z_u to memberships p_u in [0, 1]^K.

Two heads share one interface. ``SigmoidClusterHead`` is the paper's sigmoid(W z + b): a user
may belong fully to several clusters. ``CentroidClusterHead`` follows ELCRec: the cluster
centres are parameters, memberships come from a softmax over the similarity to each centre,
and its structure loss pulls users to their centres and pushes the centres apart.

>>> import torch
>>> head = CentroidClusterHead(profile_dim=4, clusters=3, temperature=0.1)
>>> memberships = head(torch.randn(5, 4))
>>> tuple(memberships.shape), bool(torch.allclose(memberships.sum(dim=1), torch.ones(5)))
((5, 3), True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

from streamrec.model.architecture import Architecture


class ClusterHead(nn.Module):
    def forward(self, profiles: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def structure_loss(self, profiles: torch.Tensor, memberships: torch.Tensor) -> torch.Tensor:
        """A loss that shapes the clusters themselves; zero when the head has none."""
        return profiles.new_zeros(())

    def initialise(self, profiles: torch.Tensor, generator: torch.Generator) -> None:
        """Start the clusters from real profiles (training from scratch); default: nothing."""


class SigmoidClusterHead(ClusterHead):
    def __init__(self, profile_dim: int, clusters: int) -> None:
        super().__init__()
        self.linear = nn.Linear(profile_dim, clusters)

    def forward(self, profiles: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(profiles))


class CentroidClusterHead(ClusterHead):
    def __init__(self, profile_dim: int, clusters: int, temperature: float) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.randn(clusters, profile_dim))
        self.temperature = temperature

    def forward(self, profiles: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self._similarity(profiles) / self.temperature, dim=1)

    def structure_loss(self, profiles: torch.Tensor, memberships: torch.Tensor) -> torch.Tensor:
        similarity = self._similarity(profiles)
        # Pull: each user towards the centres it belongs to (1 - cosine is a distance).
        pull = (memberships * (1.0 - similarity)).sum(dim=1).mean()
        # Push: centres apart, by their mean pairwise cosine similarity.
        centres = functional.normalize(self.centres, dim=1)
        clusters = centres.shape[0]
        if clusters < 2:
            return pull
        gram = centres @ centres.T
        push = (gram.sum() - gram.diagonal().sum()) / (clusters * (clusters - 1))
        return pull + push

    @torch.no_grad()
    def initialise(self, profiles: torch.Tensor, generator: torch.Generator) -> None:
        # Random initial centres sit far from where LayerNorm puts the profiles, so one
        # centre wins every user and its softmax saturates: the clusters collapse at once.
        # Starting from distinct users' profiles (as k-means does) avoids that.
        chosen = torch.randperm(profiles.shape[0], generator=generator)[: self.centres.shape[0]]
        starts = profiles[chosen]
        if starts.shape[0] < self.centres.shape[0]:
            extra = self.centres.shape[0] - starts.shape[0]
            starts = torch.cat(
                [starts, starts[torch.randint(len(starts), (extra,), generator=generator)]]
            )
            starts = starts + 0.01 * torch.randn(starts.shape, generator=generator)
        self.centres.copy_(starts)

    def _similarity(self, profiles: torch.Tensor) -> torch.Tensor:
        return functional.normalize(profiles, dim=1) @ functional.normalize(self.centres, dim=1).T


def build_cluster_head(architecture: Architecture) -> ClusterHead:
    if architecture.cluster_head == "sigmoid":
        return SigmoidClusterHead(architecture.profile_dim, architecture.clusters)
    return CentroidClusterHead(
        architecture.profile_dim, architecture.clusters, architecture.centroid_temperature
    )
