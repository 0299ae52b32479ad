"""``streamrec bench objectives``: the training objectives, alone and combined, on validation
users.

Each variant trains streamrec from scratch on the training users of the validation split
(``benchmarks.validation_users``) with the named ``TrainingSettings`` changed, and is
measured on the validation users with the protocol's metric. The test users are never looked
at. docs/model.md ("Training objectives") holds the tables and what was chosen.

>>> VARIANTS["full softmax + dropout"]
{'retrieval_negatives': 'catalogue', 'input_dropout': 0.5}
>>> variant_settings(Settings(), "triplet alone").training.retrieval_weight
0.0
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from streamrec.benchmarks.results import output_options, publish_run
from streamrec.benchmarks.validation_users import ValidationUsers, validation_options
from streamrec.config import Settings

# Each variant's changes to the configured TrainingSettings; the first is the configuration.
VARIANTS: dict[str, dict[str, Any]] = {
    "configured": {},
    "triplet alone": {"retrieval_weight": 0.0},
    "batch softmax + logQ": {"popularity_correction": True},
    "full softmax": {"retrieval_negatives": "catalogue"},
    "input dropout": {"input_dropout": 0.5},
    "variational": {"variational_weight": 0.2},
    "full softmax + dropout": {"retrieval_negatives": "catalogue", "input_dropout": 0.5},
    "full softmax + dropout + variational": {
        "retrieval_negatives": "catalogue",
        "input_dropout": 0.5,
        "variational_weight": 0.2,
    },
    "batch softmax + logQ + dropout": {"popularity_correction": True, "input_dropout": 0.5},
}


def variant_settings(settings: Settings, variant: str) -> Settings:
    training = settings.training.model_copy(update=VARIANTS[variant])
    return settings.model_copy(update={"training": training})


def measure(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    variants: list[str],
    progress: bool,
) -> dict[str, Any]:
    users = ValidationUsers.load(settings, dataset_name, protocol, seed)
    rows: dict[str, dict[str, Any]] = {}
    for variant in variants:
        scores, seconds = users.fit_and_score(variant_settings(settings, variant), seed, progress)
        rows[variant] = {
            "changes": VARIANTS[variant],
            "scores": scores,
            "training_seconds": seconds,
        }
        click.echo(
            f"{variant}: {users.metric} {scores[users.metric]:.4f}, {seconds:.0f} s", err=True
        )
    return {
        "dataset": users.dataset.name,
        "protocol": protocol,
        "seed": seed,
        "metric": users.metric,
        "validation": users.validation.summary(),
        "training": settings.training.model_dump(mode="json"),
        "variants": rows,
    }


def report_markdown(result: Mapping[str, Any]) -> str:
    from streamrec.benchmarks.results import markdown_table

    metric = result["metric"]
    configured = result["variants"].get("configured")
    rows = []
    for name, row in result["variants"].items():
        value = row["scores"][metric]
        change = "" if configured is None else f"{value - configured['scores'][metric]:+.4f}"
        changes = ", ".join(f"{key} {value}" for key, value in row["changes"].items())
        rows.append(
            [name, changes or "-", f"{value:.4f}", change, f"{row['training_seconds']:.0f}"]
        )
    validation = result["validation"]
    lines = [
        f"{metric} on {validation['test_users']} validation users of {result['dataset']} "
        f"({result['protocol']}, seed {result['seed']}; trained on "
        f"{validation['train_users']} users of the training split, the test users never seen).",
        "",
        markdown_table(
            ["variant", "training settings changed", metric, "vs configured", "training s"], rows
        ),
    ]
    return "\n".join(lines) + "\n"


@click.command(name="objectives")
@validation_options()
@click.option(
    "--variants",
    default=",".join(VARIANTS),
    show_default=True,
    help="Comma-separated variants to train (see streamrec.benchmarks.objectives.VARIANTS).",
)
@output_options(section="the 'Training objectives on <dataset>' section")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    protocol: str,
    seed: int,
    threads: int,
    progress: bool,
    variants: str,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Train streamrec under each training objective; measure on validation users."""
    import torch
    from threadpoolctl import threadpool_limits

    from streamrec.benchmarks.results import (
        changed_settings,
        result_stem,
        run_differences,
    )

    chosen = [name.strip() for name in variants.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        raise click.BadParameter(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        result = measure(settings, dataset_name, protocol, seed, chosen, progress)
    differs = run_differences(
        changed_settings(settings),
        leave_out={"dataset_name", "protocol", "seed", "threads", "progress"},
    )
    stem = result_stem("objectives", result["dataset"], protocol, f"seed{seed}", *differs)
    publish_run(
        output_dir,
        stem,
        result,
        report_markdown(result),
        doc,
        f"Training objectives on {result['dataset']}",
    )
