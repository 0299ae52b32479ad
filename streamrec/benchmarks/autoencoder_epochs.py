"""``streamrec bench autoencoder-epochs``: Mult-DAE and Mult-VAE quality on validation users
after every few epochs, and the epochs that score best there.

The validation users come from the training data of the evaluation split
(``benchmarks.validation_users``): the test users are never looked at, so the epochs chosen
here can be used on them without flattering the autoencoders. Each method is trained
once, up to ``--max-epochs``, and measured every ``--every`` epochs (training continues
exactly as one longer run would). The chosen epochs go into
``evaluation.methods.AUTOENCODER_EPOCHS`` by hand, with the command in docs/model.md.

>>> curve = {10: {"precision@50": 0.2}, 20: {"precision@50": 0.3}, 30: {"precision@50": 0.3}}
>>> best_epochs(curve, "precision@50")
20
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from streamrec.benchmarks.results import output_options, publish_run
from streamrec.benchmarks.validation_users import ValidationUsers, validation_options
from streamrec.config import Settings

METHODS = ("mult-dae", "mult-vae")


def best_epochs(curve: Mapping[int, Mapping[str, float]], metric: str) -> int:
    """The fewest epochs with the best value of ``metric`` on the curve."""
    return min(curve, key=lambda epochs: (-curve[epochs][metric], epochs))


def measure(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    max_epochs: int,
    every: int,
    progress: bool,
) -> dict[str, Any]:
    """Each method's validation curve and its best epochs."""
    from streamrec.evaluation.methods import AUTOENCODERS

    users = ValidationUsers.load(settings, dataset_name, protocol, seed)
    metric = users.metric
    methods: dict[str, Any] = {}
    for name in METHODS:
        recommender = AUTOENCODERS[name](epochs=0, seed=seed, progress=progress)
        recommender.fit(users.validation.train, users.dataset.items, users.dataset.user_attributes)
        curve: dict[int, dict[str, float]] = {}
        seconds = 0.0
        while recommender.epochs_trained < max_epochs:
            started = time.perf_counter()
            recommender.train_epochs(min(every, max_epochs - recommender.epochs_trained))
            seconds += time.perf_counter() - started
            scores = users.score(recommender)
            curve[recommender.epochs_trained] = scores
            click.echo(
                f"{name}: {recommender.epochs_trained} epochs, {metric} {scores[metric]:.4f}",
                err=True,
            )
        methods[name] = {
            "curve": curve,
            "best_epochs": best_epochs(curve, metric),
            "training_seconds": seconds,
        }
    return {
        "dataset": users.dataset.name,
        "protocol": protocol,
        "seed": seed,
        "metric": metric,
        "validation": users.validation.summary(),
        "methods": methods,
    }


def report_markdown(result: Mapping[str, Any]) -> str:
    from streamrec.benchmarks.results import markdown_table

    metric = result["metric"]
    names = list(result["methods"])
    epochs = sorted({epoch for method in result["methods"].values() for epoch in method["curve"]})
    rows = [
        [str(epoch)]
        + [
            f"{result['methods'][name]['curve'][epoch][metric]:.4f}"
            if epoch in result["methods"][name]["curve"]
            else "-"
            for name in names
        ]
        for epoch in epochs
    ]
    validation = result["validation"]
    best = ", ".join(f"{name} {result['methods'][name]['best_epochs']}" for name in names)
    lines = [
        f"{metric} on {validation['test_users']} validation users of {result['dataset']} "
        f"({result['protocol']}, seed {result['seed']}; trained on {validation['train_users']} "
        "users of the training split, the test users never seen).",
        "",
        markdown_table(["epochs", *[f"{name} {metric}" for name in names]], rows),
        f"Best epochs: {best}.",
    ]
    return "\n".join(lines) + "\n"


@click.command(name="autoencoder-epochs")
@validation_options()
@click.option("--max-epochs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--every", type=click.IntRange(min=1), default=20, show_default=True)
@output_options(section="the 'Mult-DAE and Mult-VAE epochs on <dataset>' section")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    threads: int,
    progress: bool,
    max_epochs: int,
    every: int,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Choose Mult-DAE/VAE's epochs on validation users (never the test users)."""
    import torch
    from threadpoolctl import threadpool_limits

    from streamrec.benchmarks.results import (
        result_stem,
    )

    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        result = measure(settings, dataset_name, protocol, seed, max_epochs, every, progress)
    stem = result_stem("autoencoder-epochs", result["dataset"], protocol, f"seed{seed}")
    publish_run(
        output_dir,
        stem,
        result,
        report_markdown(result),
        doc,
        f"Mult-DAE and Mult-VAE epochs on {result['dataset']}",
    )
