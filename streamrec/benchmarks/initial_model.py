"""A first model version for a fresh database: train on a dataset (or a prefix of it) and
register the result as the active version, so the consumers have something to serve.

The demo and the prequential benchmark use few steps: quality is not the point of a first
model, and the cost of a step does not depend on the data (users are sampled per step).

>>> from streamrec.config import Settings
>>> from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
>>> dataset = SyntheticStream(SyntheticConfig(users=5, items=50, items_per_group=10)).to_dataset()
>>> settings_for_dataset(Settings(), dataset).events.rating_min
1.0
"""

from __future__ import annotations

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.datasets.base import Dataset
from streamrec.model.interaction_table import InteractionTable
from streamrec.storage import UnitOfWork


def settings_for_dataset(settings: Settings, dataset: Dataset) -> Settings:
    """``settings`` whose rating scale is the dataset's, so the consumers map its ratings onto
    weights as the dataset means them."""
    scale = dataset.rating_scale
    if scale is None:
        return settings
    events = settings.events.model_copy(
        update={"rating_min": scale.minimum, "rating_max": scale.maximum}
    )
    return settings.model_copy(update={"events": events})


def active_model_version(engine: Engine) -> int | None:
    with UnitOfWork(engine) as uow:
        return uow.models.active_version()


def train_and_activate(
    engine: Engine,
    settings: Settings,
    dataset: Dataset,
    *,
    steps: int,
    table: InteractionTable | None = None,
    progress: bool = False,
) -> int:
    """Train a first model for ``steps`` on ``table`` (default: the whole dataset) on one CPU
    thread, register it as the active version, and return the version number
    (``streamrec.services.dataset_training``)."""
    import torch

    from streamrec.services import dataset_training

    torch.set_num_threads(1)
    return dataset_training.train_and_activate(
        settings,
        engine,
        dataset,
        steps=steps,
        table=table,
        reason=f"first model: {steps} steps on {dataset.name}",
        progress=progress,
    )
