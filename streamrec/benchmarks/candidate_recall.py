"""``streamrec bench candidate-recall``: how many held-out items each candidate path can
find at all, and the quality each path gives.

One model is trained on the evaluation split (as ``streamrec eval`` trains streamrec), then
each test user's history is answered two ways (``model.table_replay``'s ``candidates``):

- **shortlists**: the union of the user's top-M clusters' shortlists, ranked as served (the
  vote, re-ranked by the retrieval score when ``serving.rerank`` is on). At most M * L items.
- **catalogue**: every training item ranked by the retrieval score (P z_u) . t_j alone
  (``model.catalogue_scoring``).

For each path: recall@``--depth`` (500) of its ranked candidates against the held-out items,
and the protocol's quality from the top of the same lists (P@50 and R@50 for cold users,
HR@20 and NDCG@20 for leave-one-out). For the shortlists also the whole union: its mean
size and its recall, the most any re-ranking of it can reach.

>>> recall_of([["a", "b"], ["c"]], [("a", "x"), ("y",)])
0.25
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from streamrec.benchmarks.results import output_options, publish_run
from streamrec.benchmarks.validation_users import validation_options
from streamrec.config import Settings
from streamrec.observability.progress import TrainingProgressBar

DEPTH = 500
PATHS = ("shortlists", "catalogue")
# The quality columns reported per protocol.
QUALITY = {
    "cold-users": ("precision@50", "recall@50", "ndcg@50"),
    "loo": ("hr@20", "ndcg@20", "hr@10"),
}


def recall_of(lists: Sequence[Sequence[str]], held_out: Sequence[Sequence[str]]) -> float:
    """Mean over users of the share of their held-out items found in their list."""
    shares = [
        len(set(items) & set(relevant)) / len(relevant)
        for items, relevant in zip(lists, held_out, strict=True)
        if relevant
    ]
    return float(np.mean(shares)) if shares else 0.0


def measure(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    depth: int,
    steps: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Train once, then each path's recall@depth and quality on the split's test users."""
    from streamrec.datasets.registry import load_dataset
    from streamrec.evaluation.harness import quality
    from streamrec.evaluation.splits import split_for
    from streamrec.model.table_replay import EfficientRecRecommender

    dataset = load_dataset(dataset_name, settings)
    split = split_for(protocol, dataset, seed)
    training = settings.training.model_copy(update={"seed": seed})
    if steps is not None:
        training = training.model_copy(update={"steps": steps})
    recommender = EfficientRecRecommender(
        settings.model,
        settings.serving,
        training,
        training_observer=TrainingProgressBar(disable=not progress),
    )
    started = time.perf_counter()
    recommender.fit(split.train, dataset.items, dataset.user_attributes)
    training_seconds = time.perf_counter() - started
    histories = [case.history for case in split.cases]
    held_out = [case.held_out for case in split.cases]
    catalogue = split.training_items()
    paths: dict[str, dict[str, float]] = {}
    for path in PATHS:
        recommender.candidates = path  # type: ignore[assignment]
        lists = recommender.recommend_many(histories, depth)
        scores = quality(protocol, split.cases, lists, catalogue)
        paths[path] = {
            f"recall@{depth}": recall_of(lists, held_out),
            **{name: scores[name] for name in QUALITY[protocol]},
        }
    recommender.candidates = "shortlists"
    serving = settings.serving
    union = recommender.recommend_many(
        histories, serving.top_memberships * serving.shortlist_length
    )
    paths["shortlists"]["union_size"] = float(np.mean([len(items) for items in union]))
    paths["shortlists"]["union_recall"] = recall_of(union, held_out)
    return {
        "dataset": dataset.name,
        "protocol": protocol,
        "seed": seed,
        "depth": depth,
        "catalogue_items": len(catalogue),
        "test_users": len(split.cases),
        "clusters": settings.model.clusters,
        "top_memberships": serving.top_memberships,
        "shortlist_length": serving.shortlist_length,
        "rerank": serving.rerank,
        "training_steps": training.steps,
        "training_seconds": training_seconds,
        "paths": paths,
    }


def report_markdown(result: Mapping[str, Any]) -> str:
    from streamrec.benchmarks.results import markdown_table

    depth = result["depth"]
    names = [f"recall@{depth}", *QUALITY[result["protocol"]]]
    rows = [
        [path, *[f"{values[name]:.4f}" for name in names]]
        for path, values in result["paths"].items()
    ]
    shortlists = result["paths"]["shortlists"]
    lines = [
        f"{result['test_users']} test users of {result['dataset']} ({result['protocol']}, seed "
        f"{result['seed']}); {result['catalogue_items']:,} training items; K "
        f"{result['clusters']}, M {result['top_memberships']}, L {result['shortlist_length']}, "
        f"re-ranking {'on' if result['rerank'] else 'off'}; {result['training_steps']} "
        f"training steps ({result['training_seconds']:.0f} s on a shared machine).",
        "",
        markdown_table(["candidates", *names], rows),
        f"The shortlists' whole union: {shortlists['union_size']:.0f} items per user on "
        f"average, recall {shortlists['union_recall']:.4f}.",
    ]
    return "\n".join(lines) + "\n"


@click.command(name="candidate-recall")
@validation_options(protocols=tuple(QUALITY))
@click.option("--depth", type=click.IntRange(min=1), default=DEPTH, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Training steps.")
@output_options(section="the 'Candidate recall on <dataset>' section")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    threads: int,
    progress: bool,
    depth: int,
    steps: int | None,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Recall of the cluster shortlists' candidates beside full-catalogue scoring."""
    import torch
    from threadpoolctl import threadpool_limits

    from streamrec.benchmarks.results import (
        changed_settings,
        result_stem,
        run_differences,
    )

    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        result = measure(settings, dataset_name, protocol, seed, depth, steps, progress)
    differs = run_differences(
        changed_settings(settings),
        leave_out={"dataset_name", "protocol", "seed", "threads", "progress"},
    )
    stem = result_stem("candidate-recall", result["dataset"], protocol, f"seed{seed}", *differs)
    publish_run(
        output_dir,
        stem,
        result,
        report_markdown(result),
        doc,
        f"Candidate recall on {result['dataset']} ({stem})",
    )
