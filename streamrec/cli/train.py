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

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from streamrec.cli import train_now
from streamrec.config import Settings

if TYPE_CHECKING:
    from streamrec.model.efficientrec import EfficientRec


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
    """Train a new model on a dataset and make it the active version."""
    import torch

    from streamrec.datasets.registry import load_dataset
    from streamrec.errors import UserFacingError
    from streamrec.model.efficientrec import EfficientRec
    from streamrec.model.features import FeatureSchema
    from streamrec.model.training.sampler import InMemoryUserSampler
    from streamrec.model.training.trainer import train

    if threads is not None:
        torch.set_num_threads(threads)
    dataset = load_dataset(dataset_name, settings)
    table = dataset.table
    click.echo(
        f"dataset {dataset.name}: {len(table):,} interactions, "
        f"{len(table.user_vocabulary):,} users, {len(table.item_vocabulary):,} items"
    )
    model = EfficientRec.new(
        settings.model, FeatureSchema.fit(dataset.items.values()), settings.training.seed
    )
    click.echo(f"model: {model.describe()}")
    try:
        sampler = InMemoryUserSampler(
            table, dataset.user_attributes, settings.training.max_interactions_per_user
        )
    except ValueError as error:
        raise UserFacingError(f"dataset {dataset.name} cannot train a model: {error}") from None
    started = time.time()
    report = train(
        model,
        sampler,
        dataset.items,
        settings.training,
        steps=steps,
        top_memberships=settings.model.top_memberships,
        progress=not no_progress,
    )
    click.echo(f"trained {report.steps} steps in {report.seconds:.1f} s")
    click.echo(report.clusters.summary())
    version = _register_and_activate(
        settings,
        model,
        metrics={"training": report.to_dict()},
        data_window={
            "dataset": dataset.name,
            "interactions": len(table),
            "from": float(table.timestamps.min()) if len(table) else None,
            "to": float(table.timestamps.max()) if len(table) else None,
        },
        reason=reason or f"trained from scratch on {dataset.name} ({report.steps} steps)",
        created_at=started,
    )
    click.echo(f"model version {version} is active")


def _register_and_activate(
    settings: Settings,
    model: EfficientRec,
    metrics: dict[str, object],
    data_window: dict[str, object],
    reason: str,
    created_at: float,
) -> int:
    from streamrec.errors import UserFacingError
    from streamrec.services.training_run import SwitchRefusedError, TrainingRunService
    from streamrec.state import ModelStatus, ModelVersion
    from streamrec.storage import UnitOfWork, create_database_engine

    config, weights = model.to_version()
    engine = create_database_engine(settings.effective_database_url)
    try:
        with UnitOfWork(engine) as uow:
            # Nothing served and nothing stored: there is no state to rebuild.
            fresh = uow.models.active_version() is None and uow.interactions.count() == 0
            version = uow.models.add(
                ModelVersion(
                    None,
                    ModelStatus.ACTIVE if fresh else ModelStatus.CANDIDATE,
                    config,
                    weights,
                    metrics=metrics,
                    data_window=data_window,
                    reason=reason,
                    created_at=created_at,
                )
            )
            uow.commit()
        if not fresh:
            click.echo(f"rebuilding the state of version {version} before it takes over")
            try:
                TrainingRunService(settings, engine).switch_to(version, reason)
            except SwitchRefusedError as error:
                raise UserFacingError(
                    f"version {version} is registered but not active: {error}"
                ) from None
        return version
    finally:
        engine.dispose()
