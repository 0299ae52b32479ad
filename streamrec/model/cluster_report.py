"""How healthy the clusters are: their sizes (by top-1 and by membership mass) and how
spread each user's memberships are (entropy).

Collapse shows as a few clusters holding most users; a flat membership entropy near log K
means the head does not discriminate at all.

>>> import numpy as np
>>> report = cluster_report(np.array([[0.9, 0.1, 0.0], [0.8, 0.3, 0.1]]), top=2)
>>> report.sizes_by_top1, report.empty_clusters
((2, 0, 0), 2)
>>> [round(mass, 2) for mass in report.sizes_by_mass]
[1.7, 0.4, 0.0]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from streamrec.model.memberships import dense_top_memberships


@dataclass(frozen=True)
class ClusterReport:
    sizes_by_top1: tuple[int, ...]
    sizes_by_mass: tuple[float, ...]
    mean_entropy: float  # nats, of each user's memberships normalised to sum to 1
    max_entropy: float  # log K: what memberships spread evenly over every cluster would give

    @property
    def empty_clusters(self) -> int:
        return sum(1 for size in self.sizes_by_top1 if size == 0)

    @property
    def largest_share(self) -> float:
        total = sum(self.sizes_by_top1)
        return max(self.sizes_by_top1) / total if total else 0.0

    def summary(self) -> str:
        sizes = np.asarray(self.sizes_by_top1)
        return (
            f"clusters: top-1 sizes min {sizes.min()} median {int(np.median(sizes))} "
            f"max {sizes.max()} ({self.largest_share:.0%} of users), "
            f"{self.empty_clusters} empty; membership entropy "
            f"{self.mean_entropy:.2f} of {self.max_entropy:.2f} nats"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "empty_clusters": self.empty_clusters}


def cluster_report(memberships: np.ndarray, top: int) -> ClusterReport:
    memberships = np.asarray(memberships, dtype=np.float64)
    clusters = memberships.shape[1]
    top1 = np.bincount(memberships.argmax(axis=1), minlength=clusters)
    mass = dense_top_memberships(memberships, top).sum(axis=0)
    distribution = memberships / np.maximum(memberships.sum(axis=1, keepdims=True), 1e-12)
    entropy = -(distribution * np.log(np.maximum(distribution, 1e-12))).sum(axis=1)
    return ClusterReport(
        sizes_by_top1=tuple(int(size) for size in top1),
        sizes_by_mass=tuple(float(value) for value in mass),
        mean_entropy=float(entropy.mean()) if len(entropy) else 0.0,
        max_entropy=float(np.log(clusters)),
    )
