"""``streamrec train``: training commands.

- ``streamrec train dataset --dataset NAME|PATH`` (also ``streamrec train --dataset ...``):
  train a model from scratch and make it active. The model is trained on every interaction
  of the dataset (users sampled per step, progress shown), registered in the model registry,
  and activated. On a database that already serves users, the new version's state is rebuilt
  first, in chunks, while the current version keeps serving (as ``streamrec models promote``
  does); on an empty one it is activated at once.
- ``streamrec train now [--wait]``: ask the running trainer for a run at once
  (``streamrec.cli.train_now``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from streamrec.cli import train_now
from streamrec.config import Settings


def _dataset_options(*, dataset_required: bool) -> Callable[[Callable[..., Any]], Any]:
    """The options of training on a dataset, shared by ``train`` and ``train dataset``."""
    options = [
        click.option(
            "--dataset",
            "dataset_name",
            required=dataset_required,
            default=None,
            help="A dataset name or directory.",
        ),
        click.option(
            "--steps",
            type=click.IntRange(min=1),
            default=None,
            help="Optimiser steps (default: training.steps of the settings).",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=None,
            help="CPU threads for torch (default: torch's own choice).",
        ),
        click.option("--no-progress", is_flag=True, help="No progress bar (logs, CI)."),
        click.option("--reason", default=None, help="Recorded as the version's reason."),
    ]

    def decorate(function: Callable[..., Any]) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@click.group(name="train", invoke_without_command=True)
@_dataset_options(dataset_required=False)
@click.pass_context
def command(
    context: click.Context,
    dataset_name: str | None,
    steps: int | None,
    threads: int | None,
    no_progress: bool,
    reason: str | None,
) -> None:
    """Train a model on a dataset (`train dataset`), or ask the trainer for a run (`train now`).

    `streamrec train --dataset NAME` is short for `streamrec train dataset --dataset NAME`.
    """
    if context.invoked_subcommand is not None:
        if dataset_name is not None:
            raise click.UsageError(
                "--dataset goes with `streamrec train --dataset NAME` or "
                "`streamrec train dataset --dataset NAME`, not with a subcommand"
            )
        return
    if dataset_name is None:
        raise click.UsageError("give --dataset NAME, or a subcommand: dataset, now")
    train_on_dataset(context.obj, dataset_name, steps, threads, no_progress, reason)


@command.command(name="dataset")
@_dataset_options(dataset_required=True)
@click.pass_obj
def dataset_command(
    settings: Settings,
    dataset_name: str,
    steps: int | None,
    threads: int | None,
    no_progress: bool,
    reason: str | None,
) -> None:
    """Train a new model on a dataset and make it the active version."""
    train_on_dataset(settings, dataset_name, steps, threads, no_progress, reason)


command.add_command(train_now.command)


def train_on_dataset(
    settings: Settings,
    dataset_name: str,
    steps: int | None,
    threads: int | None,
    no_progress: bool,
    reason: str | None,
) -> None:
    """Train a new model on a dataset and make it the active version
    (``streamrec.services.dataset_training``)."""
    import torch

    from streamrec.datasets.registry import load_dataset
    from streamrec.services.dataset_training import train_and_activate
    from streamrec.storage import create_database_engine

    if threads is not None:
        torch.set_num_threads(threads)
    dataset = load_dataset(dataset_name, settings)
    table = dataset.table
    click.echo(
        f"dataset {dataset.name}: {len(table):,} interactions, "
        f"{len(table.user_vocabulary):,} users, {len(table.item_vocabulary):,} items"
    )
    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        version = train_and_activate(
            settings,
            engine,
            dataset,
            steps=steps,
            reason=reason,
            progress=not no_progress,
            announce=click.echo,
        )
    finally:
        engine.dispose()
    click.echo(f"model version {version} is active")
