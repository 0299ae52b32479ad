"""Training a model from scratch on a dataset, registering it and making it the active version:
what ``streamrec train dataset`` does, and how the demo and the benchmarks get a first model.

On a database that serves nothing and stores no interactions, the new version is activated at
once. On any other, it is registered as a candidate and its state is rebuilt first, in chunks,
while the current version keeps serving (``TrainingRunService.switch_to``, as
``streamrec models promote`` does).

The version records what it was trained on:

>>> from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
>>> dataset = SyntheticStream(SyntheticConfig(users=5, items=50, items_per_group=10)).to_dataset()
>>> window = data_window(dataset.name, dataset.table)
>>> window["interactions"] == len(dataset.table), window["from"] <= window["to"]
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.datasets.base import Dataset
from streamrec.errors import UserFacingError
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.interaction_table import InteractionTable
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import TrainingReport, train
from streamrec.observability.progress import TrainingProgressBar
from streamrec.services.training_run import SwitchRefusedError, TrainingRunService
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage.unit_of_work import UnitOfWork


def _silent(_: str) -> None:
    """The default ``announce``: say nothing."""


def train_and_activate(
    settings: Settings,
    engine: Engine,
    dataset: Dataset,
    *,
    steps: int | None = None,
    table: InteractionTable | None = None,
    reason: str | None = None,
    progress: bool = False,
    announce: Callable[[str], None] = _silent,
) -> int:
    """Train a new model on ``table`` (default: the whole dataset) for ``steps`` (default:
    ``training.steps`` of the settings), register it, make it the active version and return
    its number. ``reason`` is recorded with the version (default: says what it was trained
    on); ``announce`` is told each stage in one line.

    Raises ``UserFacingError`` when the dataset cannot train a model, or when the version is
    registered but another run holds the lock its rebuild needs."""
    training_table = dataset.table if table is None else table
    started = time.time()
    model, report = train_new_model(
        settings, dataset, steps=steps, table=training_table, progress=progress, announce=announce
    )
    config, weights = model.to_version()
    reason = reason or f"trained from scratch on {dataset.name} ({report.steps} steps)"
    with UnitOfWork(engine) as uow:
        # Nothing served and nothing stored: there is no state to rebuild.
        fresh = uow.models.active_version() is None and uow.interactions.count() == 0
        version = uow.models.add(
            ModelVersion(
                None,
                ModelStatus.ACTIVE if fresh else ModelStatus.CANDIDATE,
                config,
                weights,
                metrics={"training": report.to_dict()},
                data_window=data_window(dataset.name, training_table),
                reason=reason,
                created_at=started,
                promoted_at=time.time() if fresh else None,
            )
        )
        uow.commit()
    if not fresh:
        announce(f"rebuilding the state of version {version} before it takes over")
        try:
            TrainingRunService(settings, engine).switch_to(version, reason)
        except SwitchRefusedError as error:
            raise UserFacingError(
                f"version {version} is registered but not active: {error}"
            ) from None
    return version


def train_new_model(
    settings: Settings,
    dataset: Dataset,
    *,
    steps: int | None = None,
    table: InteractionTable | None = None,
    progress: bool = False,
    announce: Callable[[str], None] = _silent,
) -> tuple[EfficientRec, TrainingReport]:
    """A new model trained on ``table`` (default: the whole dataset) for ``steps`` (default:
    ``training.steps``), and its training report; nothing is stored. ``train_and_activate``
    registers what this returns; the in-process prequential benchmark serves it as it is.

    Raises ``UserFacingError`` when the dataset cannot train a model."""
    training_table = dataset.table if table is None else table
    model = EfficientRec.new(
        settings.model, FeatureSchema.fit(dataset.items.values()), settings.training.seed
    )
    announce(f"model: {model.describe()}")
    try:
        sampler = InMemoryUserSampler(
            training_table, dataset.user_attributes, settings.training.max_interactions_per_user
        )
    except ValueError as error:
        raise UserFacingError(f"dataset {dataset.name} cannot train a model: {error}") from None
    report = train(
        model,
        sampler,
        dataset.items,
        settings.training,
        steps=steps,
        top_memberships=settings.serving.top_memberships,
        observer=TrainingProgressBar() if progress else None,
    )
    model.date_statistics(training_table.timestamps)
    announce(f"trained {report.steps} steps in {report.seconds:.1f} s")
    announce(report.clusters.summary())
    return model, report


def data_window(dataset_name: str, table: InteractionTable) -> dict[str, object]:
    """What a version was trained on: the dataset, how many interactions, and their span."""
    timestamps = table.timestamps
    return {
        "dataset": dataset_name,
        "interactions": len(table),
        "from": float(timestamps.min()) if len(timestamps) else None,
        "to": float(timestamps.max()) if len(timestamps) else None,
    }
