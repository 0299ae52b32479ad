"""Each cluster's shortlist: its top-L items by a weight W_cj derived from the statistics.

The weights, for cluster c and item j (statistics as read at one time):

- ``share``: A_cj / M_c, the share of the cluster's mass that liked j;
- ``rated_share``: C_cj / M_c, the share of the cluster that interacted with j at all;
- ``weighted_mean``: the paper's weighted rating, sum p_uc w_uj / C_cj, the membership-weighted
  mean weight of j among the cluster's raters (it ranks an item liked by a single member first);
- ``shrunk_mean``: that mean shrunk towards 0 (the neutral weight) by ``prior_mass`` pseudo-raters:
  sum p_uc w_uj / (C_cj + prior_mass), count-aware.

docs/model.md records which one measured best (the default in ModelSettings).

>>> import numpy as np
>>> liked, rated = np.array([[2.0, 1.0, 0.0]]), np.array([[2.0, 1.0, 3.0]])
>>> weighted, mass = np.array([[2.0, 1.0, -3.0]]), np.array([4.0])
>>> shortlist_weights(liked, rated, weighted, mass, "share").tolist()
[[0.5, 0.25, 0.0]]
>>> shortlist_weights(liked, rated, weighted, mass, "weighted_mean").tolist()
[[1.0, 1.0, -1.0]]
"""

from __future__ import annotations

from typing import Literal

import numpy as np

ShortlistWeight = Literal["share", "rated_share", "weighted_mean", "shrunk_mean"]
NO_ITEM = -1
DEFAULT_PRIOR_MASS = 5.0


def shortlist_weights(
    liked: np.ndarray,
    rated: np.ndarray,
    weighted: np.ndarray,
    mass: np.ndarray,
    kind: ShortlistWeight,
    prior_mass: float = DEFAULT_PRIOR_MASS,
) -> np.ndarray:
    """W (clusters x items) from the statistics; 0 where a cluster has no mass or raters."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "share":
            weights = liked / mass[:, None]
        elif kind == "rated_share":
            weights = rated / mass[:, None]
        elif kind == "weighted_mean":
            weights = weighted / rated
        elif kind == "shrunk_mean":
            weights = weighted / (rated + prior_mass)
        else:
            raise ValueError(f"unknown shortlist weight {kind!r}")
    return np.nan_to_num(weights, nan=0.0, posinf=0.0, neginf=0.0)
