"""streamrec's quality against its two size knobs: clusters K and shortlist length L.

K changes the model, so each K is trained once; L only changes how many items each cluster
keeps, so for one trained model every L is measured by re-deriving the shortlists
(``reconfigure(shortlist_length=L)``) when the recommender supports it, else by refitting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from streamrec.datasets.base import Dataset
from streamrec.evaluation.harness import fit_timed, list_length, quality, recommend_checked
from streamrec.evaluation.protocol import OfflineRecommender
from streamrec.evaluation.splits import EvaluationSplit

DEFAULT_CLUSTERS = (8, 16, 43, 64)
DEFAULT_SHORTLIST_LENGTHS = (10, 25, 50, 100, 200)

# Builds an unfitted recommender for (clusters K, shortlist length L).
RecommenderBuilder = Callable[[int, int], OfflineRecommender]


@dataclass(frozen=True)
class SweepPoint:
    clusters: int
    shortlist_length: int
    training_seconds: float
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep(
    build: RecommenderBuilder,
    split: EvaluationSplit,
    dataset: Dataset,
    clusters: Sequence[int] = DEFAULT_CLUSTERS,
    shortlist_lengths: Sequence[int] = DEFAULT_SHORTLIST_LENGTHS,
    progress: bool = True,
) -> list[SweepPoint]:
    """Quality at every (K, L) pair: one fit per K, shortlists re-derived per L."""
    points: list[SweepPoint] = []
    n = list_length(split.protocol)
    histories = [case.history for case in split.cases]
    catalogue = split.training_items()
    grid = [(k, length) for k in clusters for length in shortlist_lengths]
    recommender: OfflineRecommender | None = None
    fitted_clusters: int | None = None
    training_seconds = 0.0
    for k, length in tqdm(grid, desc="sweep K x L", disable=not progress):
        reconfigure = getattr(recommender, "reconfigure", None)
        if recommender is None or fitted_clusters != k or not callable(reconfigure):
            recommender = build(k, length)
            training_seconds = fit_timed(recommender, split, dataset)
            fitted_clusters = k
        else:
            reconfigure(shortlist_length=length)
        recommendations, _ = recommend_checked(recommender, histories, n)
        points.append(
            SweepPoint(
                clusters=k,
                shortlist_length=length,
                training_seconds=training_seconds,
                metrics=quality(split.protocol, split.cases, recommendations, catalogue),
            )
        )
    return points
