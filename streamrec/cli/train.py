"""``streamrec train --dataset NAME|PATH``: train a model from scratch and make it active.

The model is trained on every interaction of the dataset (users sampled per step, progress
shown), registered in the model registry, and activated. On a database that already serves
users, the new version's state is rebuilt first, in chunks, while the current version keeps
serving (as ``streamrec models promote`` does); on an empty one it is activated at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from streamrec.model.efficientrec import EfficientRec


@click.command(name="train")
@click.option("--dataset", "dataset_name", required=True, help="A dataset name or directory.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Optimiser steps (default: training.steps of the settings).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch (default: torch's own choice).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar (logs, CI).")
@click.option("--reason", default=None, help="Recorded as the version's reason.")
@click.pass_obj
def command(
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
