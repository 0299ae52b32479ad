"""``streamrec bench recommendation-latency``: the time of one recommendation, beside a
full-catalogue scoring of the same user (the target: p99 at most 2 ms).

Both paths start from what the consumer stores for a user: the top-M memberships and the
profile z_u (so the retrieval query P z_u). Each request also looks up the user's own items,
which are never recommended.

- **serving**: the consumer's path. ``EfficientRecStream.recommend_one`` from the stored
  state (in memory here): the user's items and profile, the vote over the user's M cluster
  shortlists, re-ranked by (P z_u) . t_j + w log(vote) when ``serving.rerank`` is on. It costs
  O(M L d), whatever the catalogue size.
- **full catalogue**: the same retrieval score for every item of the training catalogue, the
  user's items removed, top N by argpartition. It costs O(items d).

The model is trained on the cold-users split of the dataset (``--steps`` shortens that), and
the test users' histories are learned once, as the consumer would have stored them. Each
user is then timed ``--repeats`` times per path, one request at a time, on one thread.

>>> stats = latency_statistics([1_000_000, 2_000_000, 3_000_000])
>>> stats["p50_ms"], stats["max_ms"]
(2.0, 3.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from streamrec.benchmarks.results import output_options, publish_run
from streamrec.config import Settings
from streamrec.observability.progress import TrainingProgressBar

TARGET_P99_MS = 2.0
SERVING = "serving (M shortlists, re-ranked)"
FULL_CATALOGUE = "full catalogue (every item scored)"


def latency_statistics(nanoseconds: Sequence[int]) -> dict[str, float]:
    """Percentiles in milliseconds of request durations given in nanoseconds."""
    milliseconds = np.asarray(nanoseconds, dtype=np.float64) / 1e6
    return {
        "p50_ms": float(np.percentile(milliseconds, 50)),
        "p95_ms": float(np.percentile(milliseconds, 95)),
        "p99_ms": float(np.percentile(milliseconds, 99)),
        "max_ms": float(milliseconds.max()),
    }


def timed(request: Callable[[], object], repeats: int) -> list[int]:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        request()
        durations.append(time.perf_counter_ns() - started)
    return durations


def measure(
    settings: Settings, dataset_name: str, steps: int | None, users: int, repeats: int, seed: int
) -> dict[str, Any]:
    """Train on the dataset's cold-users split, then time both paths for ``users`` test users."""
    from streamrec.datasets.registry import load_dataset
    from streamrec.evaluation.splits import split_for
    from streamrec.model.stream import events_of_histories
    from streamrec.model.table_replay import EfficientRecRecommender

    dataset = load_dataset(dataset_name, settings)
    split = split_for("cold-users", dataset, seed)
    training = settings.training
    if steps is not None:
        training = training.model_copy(update={"steps": steps})
    recommender = EfficientRecRecommender(
        settings.model, settings.serving, training, training_observer=TrainingProgressBar()
    )
    recommender.fit(split.train, dataset.items, dataset.user_attributes)
    model, stream = recommender.model, recommender.stream
    assert model is not None and stream is not None

    random = np.random.default_rng(seed)
    chosen = random.choice(len(split.cases), size=min(users, len(split.cases)), replace=False)
    histories = [split.cases[int(index)].history for index in chosen]
    # The test users' histories are learned as the consumer would have: they are stored.
    stream.record(stream.learn_many(events_of_histories(histories)))
    user_ids = [history.user_id for history in histories]
    profiles = recommender.state.profiles
    queries = model.retrieval_queries(np.stack([profiles[user].profile for user in user_ids]))
    catalogue = sorted(split.training_items())
    catalogue_index = {item_id: column for column, item_id in enumerate(catalogue)}
    catalogue_targets = model.item_targets(catalogue, dataset.items)
    count = settings.serving.recommendations
    kept = min(count, len(catalogue))
    rerank = settings.serving.rerank

    def serve(row: int) -> object:
        return stream.recommend_one(user_ids[row], count)

    def score_everything(row: int) -> object:
        own = [
            catalogue_index[item]
            for item, _ in histories[row].interactions
            if item in catalogue_index
        ]
        scores = catalogue_targets @ queries[row]
        scores[own] = -np.inf
        top = np.argpartition(-scores, kept - 1)[:kept]
        return top[np.argsort(-scores[top], kind="stable")]

    durations: dict[str, list[int]] = {SERVING: [], FULL_CATALOGUE: []}
    for row in range(len(histories)):
        serve(row), score_everything(row)  # warm caches for this user
        durations[SERVING] += timed(lambda row=row: serve(row), repeats)
        durations[FULL_CATALOGUE] += timed(lambda row=row: score_everything(row), repeats)
    shortlists = recommender.state.shortlist_by_cluster
    candidate_counts = [
        len(
            {
                item_id
                for cluster, _ in profiles[user].top_clusters
                for item_id, _ in shortlists.get(cluster, [])
            }
        )
        for user in user_ids
    ]
    return {
        "dataset": dataset.name,
        "users": len(histories),
        "repeats": repeats,
        "catalogue_items": len(catalogue),
        "clusters": settings.model.clusters,
        "top_memberships": settings.serving.top_memberships,
        "shortlist_length": settings.serving.shortlist_length,
        "rerank": rerank,
        "recommendations": count,
        "mean_candidates": float(np.mean(candidate_counts)),
        "paths": {name: latency_statistics(values) for name, values in durations.items()},
        "durations_ns": durations,
    }


def report_markdown(result: dict[str, Any], plot_path: str | None) -> str:
    """The run as Markdown; ``plot_path`` (from the repository's root) is linked as a
    document in docs/ sees it."""
    from streamrec.benchmarks.results import markdown_table

    rows = [
        [
            name,
            f"{stats['p50_ms']:.3f}",
            f"{stats['p95_ms']:.3f}",
            f"{stats['p99_ms']:.3f}",
            f"{stats['max_ms']:.3f}",
        ]
        for name, stats in result["paths"].items()
    ]
    serving_p99 = result["paths"][SERVING]["p99_ms"]
    met = "met" if serving_p99 <= TARGET_P99_MS else "**not yet**"
    lines = [
        f"{result['users']} test users of {result['dataset']} (cold-users split) x "
        f"{result['repeats']} requests each, one at a time, one thread; top "
        f"{result['recommendations']} of {result['catalogue_items']:,} catalogue items; "
        f"K {result['clusters']}, M {result['top_memberships']}, L "
        f"{result['shortlist_length']}, re-ranking {'on' if result['rerank'] else 'off'}; "
        f"{result['mean_candidates']:.0f} candidates per user on average.",
        "",
        markdown_table(["path", "p50 (ms)", "p95 (ms)", "p99 (ms)", "max (ms)"], rows),
        f"Target: one recommendation p99 at most {TARGET_P99_MS:g} ms: "
        f"{serving_p99:.3f} ms, {met}.",
    ]
    if plot_path:
        lines += ["", f"![{Path(plot_path).stem}](../{plot_path})"]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for name, values in result["durations_ns"].items():
        milliseconds = np.sort(np.asarray(values, dtype=np.float64) / 1e6)
        share = np.arange(1, len(milliseconds) + 1) / len(milliseconds)
        axes.plot(milliseconds, share, label=name)
    axes.axvline(
        TARGET_P99_MS, color="grey", linestyle="--", label=f"target p99 {TARGET_P99_MS:g} ms"
    )
    axes.set_xscale("log")
    axes.set_xlabel("one recommendation (ms)")
    axes.set_ylabel("share of requests")
    axes.set_title(f"Recommendation latency on {result['dataset']}")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@click.command(name="recommendation-latency")
@click.option("--dataset", "dataset_name", default="ml-1m", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Training steps.")
@click.option("--users", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@output_options(section="the 'Recommendation latency on <dataset>' section")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    steps: int | None,
    users: int,
    repeats: int,
    seed: int,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Time one recommendation from stored state, beside full-catalogue scoring."""
    import torch
    from threadpoolctl import threadpool_limits

    from streamrec.benchmarks.results import (
        changed_settings,
        result_stem,
        run_differences,
    )

    stem = result_stem(
        "recommendation-latency",
        dataset_name,
        *run_differences(changed_settings(settings), leave_out={"dataset_name"}),
    )

    torch.set_num_threads(1)
    with threadpool_limits(1):
        result = measure(settings, dataset_name, steps, users, repeats, seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    plot(result, output_dir / f"{stem}.png")
    markdown = report_markdown(result, f"{output_dir.as_posix()}/{stem}.png")
    title = f"Recommendation latency on {result['dataset']}"
    if stem != result_stem("recommendation-latency", dataset_name):
        title += f" ({stem})"
    publish_run(output_dir, stem, result, markdown, doc, title, [output_dir / f"{stem}.png"])
