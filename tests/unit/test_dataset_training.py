"""Training on a dataset, registering and activating the model (in-memory SQLite): a fresh
database activates it at once; one that serves a model rebuilds the new version's state first.
(``streamrec train`` itself is tested in test_model_train_cli.)"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from streamrec.datasets.base import Dataset
from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
from streamrec.errors import UserFacingError
from streamrec.services import dataset_training
from streamrec.services.dataset_training import train_and_activate
from streamrec.state import ModelStatus
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.small_model import small_model_settings

torch.set_num_threads(1)

SETTINGS = small_model_settings(training={"users_per_step": 8})


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return SyntheticStream(SyntheticConfig(users=20, items=40, items_per_group=10)).to_dataset()


def test_a_fresh_database_gets_the_model_active_at_once_with_its_training_window(
    dataset: Dataset,
) -> None:
    engine = create_memory_database()
    prefix = dataset.table.subset(np.arange(len(dataset.table) // 2))
    said: list[str] = []
    version = train_and_activate(
        SETTINGS, engine, dataset, steps=2, table=prefix, reason="why", announce=said.append
    )
    with UnitOfWork(engine) as uow:
        model = uow.models.get(version)
    assert model is not None
    assert model.status is ModelStatus.ACTIVE and model.promoted_at is not None
    assert model.reason == "why"
    assert model.data_window["interactions"] == len(prefix) < len(dataset.table)
    assert model.data_window["to"] == float(prefix.timestamps.max())
    assert model.metrics["training"]["steps"] == 2
    assert said[0].startswith("model: ") and said[1].startswith("trained 2 steps")


def test_a_database_that_serves_a_model_switches_to_the_new_one_after_a_rebuild(
    dataset: Dataset,
) -> None:
    engine = create_memory_database()
    first = train_and_activate(SETTINGS, engine, dataset, steps=1)
    said: list[str] = []
    second = train_and_activate(SETTINGS, engine, dataset, steps=1, announce=said.append)
    with UnitOfWork(engine) as uow:
        statuses = {model.version: model.status for model in uow.models.list()}
        latest = uow.models.get(second)
    assert statuses == {first: ModelStatus.RETIRED, second: ModelStatus.ACTIVE}
    assert f"rebuilding the state of version {second} before it takes over" in said
    assert (
        latest is not None and latest.reason == f"trained from scratch on {dataset.name} (1 steps)"
    )


def test_a_dataset_without_trainable_users_ends_with_one_line_and_registers_nothing(
    dataset: Dataset,
) -> None:
    engine = create_memory_database()
    one_event = dataset.table.subset(np.arange(1))
    with pytest.raises(UserFacingError, match="cannot train a model"):
        train_and_activate(SETTINGS, engine, dataset, steps=1, table=one_event)
    with UnitOfWork(engine) as uow:
        assert uow.models.list() == []


def test_examples_in_docstrings_hold() -> None:
    outcome = doctest.testmod(dataset_training)
    assert outcome.attempted > 0
    assert outcome.failed == 0
