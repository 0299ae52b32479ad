"""Runs recommenders on one split and measures them the same way: quality, training time,
single-user recommendation latency and size.

Quality follows the protocol (splits.COLD_USERS: P/R/NDCG@50, P@50 of liked items, coverage;
splits.LEAVE_ONE_OUT: HR and NDCG at 5, 10, 20). Latency is the time of one
``recommend_many([history], n)`` call, one user at a time, on a seeded sample of test users.

>>> from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
>>> from streamrec.evaluation.baselines import PopularityRecommender
>>> from streamrec.evaluation.splits import split_cold_users
>>> dataset = SyntheticStream(SyntheticConfig(users=60, items=40, groups=3)).to_dataset()
>>> split = split_cold_users(dataset, seed=0)
>>> result = evaluate(PopularityRecommender(), split, dataset, latency_users=5, progress=False)
>>> sorted(result.metrics)[:3], result.contract_violations
(['coverage@50', 'liked_precision@50', 'ndcg@50'], 0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from streamrec.datasets.base import Dataset
from streamrec.evaluation import metrics
from streamrec.evaluation.protocol import OfflineRecommender
from streamrec.evaluation.splits import COLD_USERS, LEAVE_ONE_OUT, EvaluationCase, EvaluationSplit
from streamrec.model.history import UserHistory

COLD_USERS_CUTOFF = 50
LEAVE_ONE_OUT_CUTOFFS = (5, 10, 20)
RECOMMEND_BATCH = 1024


@dataclass
class MethodResult:
    method: str
    metrics: dict[str, float]
    training_seconds: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    parameter_count: int
    contract_violations: int = 0  # recommended history items, duplicates or too many items
    cluster_sizes: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvaluationRun:
    dataset: str
    protocol: str
    seed: int
    split: dict[str, Any]
    results: list[MethodResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    # streamrec's model and training settings that differ from the defaults (config file,
    # environment), so that a result names what produced it.
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "seed": self.seed,
            "split": self.split,
            "settings": self.settings,
            "results": [result.to_dict() for result in self.results],
            "skipped": self.skipped,
            "sweep": self.sweep,
        }


def list_length(protocol: str) -> int:
    """How many items each user is asked for under protocol."""
    return COLD_USERS_CUTOFF if protocol == COLD_USERS else max(LEAVE_ONE_OUT_CUTOFFS)


def quality(
    protocol: str,
    cases: Sequence[EvaluationCase],
    recommendations: Sequence[Sequence[str]],
    catalogue: set[str],
) -> dict[str, float]:
    """The protocol's quality metrics, averaged over users."""
    pairs = list(zip(recommendations, cases, strict=True))
    if protocol == COLD_USERS:
        k = COLD_USERS_CUTOFF
        paper = [
            share
            for items, case in pairs
            if (share := metrics.liked_share_of_rated(items, set(case.held_out), case.liked, k))
            is not None
        ]
        return {
            f"precision@{k}": _average(pairs, metrics.precision_at, k),
            f"recall@{k}": _average(pairs, metrics.recall_at, k),
            f"ndcg@{k}": _average(pairs, metrics.ndcg_at, k),
            f"liked_precision@{k}": _average(pairs, metrics.precision_at, k, liked=True),
            f"paper_precision@{k}": _mean(paper),
            f"coverage@{k}": metrics.catalogue_coverage(recommendations, catalogue),
        }
    if protocol == LEAVE_ONE_OUT:
        result = {}
        for k in LEAVE_ONE_OUT_CUTOFFS:
            result[f"hr@{k}"] = _average(pairs, metrics.hit_rate_at, k)
            result[f"ndcg@{k}"] = _average(pairs, metrics.ndcg_at, k)
        result[f"coverage@{max(LEAVE_ONE_OUT_CUTOFFS)}"] = metrics.catalogue_coverage(
            recommendations, catalogue
        )
        return result
    raise ValueError(f"unknown protocol {protocol!r}")


def fit_timed(recommender: OfflineRecommender, split: EvaluationSplit, dataset: Dataset) -> float:
    """Fit on the split's training data; the wall-clock seconds it took."""
    started = time.perf_counter()
    recommender.fit(split.train, dataset.items, dataset.user_attributes)
    return time.perf_counter() - started


def recommend_checked(
    recommender: OfflineRecommender,
    histories: Sequence[UserHistory],
    n: int,
    progress: bool = False,
    description: str = "",
) -> tuple[list[list[str]], int]:
    """Recommendations for every history in batches, with contract violations removed and
    counted: an item from the history, a repeated item, or more than n items."""
    recommendations: list[list[str]] = []
    violations = 0
    starts = range(0, len(histories), RECOMMEND_BATCH)
    for start in tqdm(starts, desc=description, unit="batch", disable=not progress, leave=False):
        batch = histories[start : start + RECOMMEND_BATCH]
        returned = recommender.recommend_many(batch, n)
        if len(returned) != len(batch):
            raise ValueError(
                f"{recommender.name} returned {len(returned)} lists for {len(batch)} users"
            )
        for history, items in zip(batch, returned, strict=True):
            cleaned, removed = _clean(history, items, n)
            recommendations.append(cleaned)
            violations += removed
    return recommendations, violations


def measure_latency(
    recommender: OfflineRecommender,
    histories: Sequence[UserHistory],
    n: int,
    sample_size: int,
    seed: int,
) -> tuple[float | None, float | None]:
    """p50 and p99 in milliseconds of recommending for one user at a time."""
    if sample_size <= 0 or not histories:
        return None, None
    random = np.random.default_rng(seed)
    chosen = random.choice(len(histories), size=min(sample_size, len(histories)), replace=False)
    recommender.recommend_many([histories[int(chosen[0])]], n)  # warm caches and lazy setup
    durations = []
    for index in chosen:
        started = time.perf_counter()
        recommender.recommend_many([histories[int(index)]], n)
        durations.append((time.perf_counter() - started) * 1000.0)
    return float(np.percentile(durations, 50)), float(np.percentile(durations, 99))


def evaluate(
    recommender: OfflineRecommender,
    split: EvaluationSplit,
    dataset: Dataset,
    latency_users: int = 200,
    seed: int = 0,
    progress: bool = True,
) -> MethodResult:
    """Fit recommender on the split, then measure it."""
    training_seconds = fit_timed(recommender, split, dataset)
    n = list_length(split.protocol)
    histories = [case.history for case in split.cases]
    recommendations, violations = recommend_checked(
        recommender, histories, n, progress, f"{recommender.name}: recommending"
    )
    p50, p99 = measure_latency(recommender, histories, n, latency_users, seed)
    return MethodResult(
        method=recommender.name,
        metrics=quality(split.protocol, split.cases, recommendations, split.training_items()),
        training_seconds=training_seconds,
        latency_p50_ms=p50,
        latency_p99_ms=p99,
        parameter_count=int(recommender.parameter_count()),
        contract_violations=violations,
        cluster_sizes=cluster_sizes(recommender),
    )


def cluster_sizes(recommender: OfflineRecommender) -> list[float] | None:
    """The recommender's cluster sizes: its ``cluster_sizes`` (attribute or method) if it has
    one, else the membership mass M_c of its cluster ``statistics`` (EfficientRecRecommender),
    else None."""
    sizes = getattr(recommender, "cluster_sizes", None)
    if callable(sizes):
        sizes = sizes()
    if sizes is None:
        sizes = getattr(getattr(recommender, "statistics", None), "mass", None)
    if sizes is None:
        return None
    return [float(size) for size in sizes]


def _clean(history: UserHistory, items: Sequence[str], n: int) -> tuple[list[str], int]:
    seen = {item for item, _ in history.interactions}
    cleaned: list[str] = []
    for item in items:
        if item not in seen:
            cleaned.append(item)
            seen.add(item)
    kept = cleaned[:n]
    return kept, len(items) - len(kept)


def _average(
    pairs: Sequence[tuple[Sequence[str], EvaluationCase]],
    metric: Callable[[Sequence[str], Collection[str], int], float],
    k: int,
    liked: bool = False,
) -> float:
    """Mean over users of metric at k, relevant = held-out items (or only the liked ones)."""
    return _mean(
        [metric(items, case.liked if liked else case.held_out, k) for items, case in pairs]
    )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0
