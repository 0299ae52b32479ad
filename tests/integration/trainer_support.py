"""What the trainer tests share: small settings, a planted-group synthetic stream stored as
interactions, models registered and given a full state, and from-scratch reference states.

Everything runs against the test's real database; references are rebuilt in an in-memory
SQLite copy of the interactions, so they never touch the state under test.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import SecretStr
from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.model.training.sampler import InMemoryUserSampler
from streamrec.model.training.trainer import train
from streamrec.services.rebuild import VersionRebuilder
from streamrec.services.training_run import TrainingRunService
from streamrec.state import Interaction, ModelStatus, ModelVersion
from streamrec.storage.memory import create_memory_database
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.snapshots import StateSnapshot, take_snapshot
from trainer.process import TrainerProcess

torch.set_num_threads(1)

REPOSITORY = Path(__file__).resolve().parents[2]
SMALL_MODEL = {
    "hash_buckets": 512,
    "item_dim": 16,
    "profile_dim": 16,
    "hidden_dim": 32,
    "clusters": 8,
    "feature_buckets": 64,
}
SMALL_SERVING = {"top_memberships": 3, "shortlist_length": 20, "recommendations": 10}
SMALL_TRAINING = {"users_per_step": 32, "steps": 60, "fine_tune_steps": 10}
# Many small disjoint groups: personalisation matters, popularity alone scores poorly.
PLANTED_GROUPS = SyntheticConfig(
    users=400,
    items=300,
    groups=20,
    items_per_group=10,
    max_groups_per_user=1,
    min_events_per_user=8,
    max_events_per_user=16,
    users_per_block=100,
    seed=1,
)
WAIT_SECONDS = 60.0


def trainer_settings(base: Settings, database_url: str, **trainer: Any) -> Settings:
    """``base`` (e.g. a test's broker settings) with the database, a small model, short
    training, small rebuild chunks and ``trainer`` overrides."""
    return base.model_copy(
        update={
            "database_url": SecretStr(database_url),
            "model": base.model.model_copy(update=SMALL_MODEL),
            "serving": base.serving.model_copy(update=SMALL_SERVING),
            "training": base.training.model_copy(update=SMALL_TRAINING),
            "trainer": base.trainer.model_copy(
                update={"min_new_events": 1, "rebuild_chunk_users": 50, **trainer}
            ),
        }
    )


def stream_interactions(config: SyntheticConfig = PLANTED_GROUPS) -> list[Interaction]:
    stream = SyntheticStream(config)
    dataset = stream.to_dataset()
    table = dataset.table
    return [
        Interaction(
            table.user_vocabulary[table.users[row]],
            table.item_vocabulary[table.items[row]],
            float(table.weights[row]),
            f"synthetic-{row}",
            "rating",
            float(table.timestamps[row]),
        )
        for row in range(len(table))
    ]


def store(
    engine: Engine, interactions: Sequence[Interaction], written_at: float | None = None
) -> None:
    """Store ``interactions`` as written now, or at ``written_at`` (seconds since the epoch)."""
    clock = time.time if written_at is None else lambda: written_at
    with UnitOfWork(engine, clock=clock) as uow:
        uow.interactions.save_many(interactions)
        uow.commit()


def trained_model(
    settings: Settings, interactions: Sequence[Interaction], seed: int = 0
) -> EfficientRec:
    """A model trained briefly on ``interactions``: clearly better than an untrained one."""
    from streamrec.model.interaction_table import InteractionTable

    table = InteractionTable.from_rows(
        (row.user_id, row.item_id, row.weight, row.timestamp, None) for row in interactions
    )
    model = EfficientRec.new(settings.model, FeatureSchema(), seed=seed)
    train(model, InMemoryUserSampler(table), {}, settings.training)
    return model


def register(engine: Engine, model: EfficientRec, status: ModelStatus, **fields: Any) -> int:
    config, weights = model.to_version()
    with UnitOfWork(engine) as uow:
        version = uow.models.add(ModelVersion(None, status, config, weights, **fields))
        uow.commit()
    return version


def activate_with_state(
    engine: Engine, settings: Settings, model: EfficientRec, **fields: Any
) -> int:
    """Register ``model``, build every user's state under it, and make it the active one."""
    version = register(engine, model, ModelStatus.BUILDING, **fields)
    VersionRebuilder(settings, engine).rebuild(version)
    with UnitOfWork(engine) as uow:
        uow.models.activate(version)
        uow.commit()
    return version


def snapshot(engine: Engine, version: int | None = None) -> StateSnapshot:
    with UnitOfWork(engine) as uow:
        return take_snapshot(uow, version)


def reference_snapshot(engine: Engine, settings: Settings, version: int) -> StateSnapshot:
    """The state ``version`` has when rebuilt from scratch over the stored interactions, in a
    separate in-memory database."""
    reference, copy = rebuilt_copy(engine, settings, version)
    try:
        return snapshot(reference, copy)
    finally:
        reference.dispose()


def rebuilt_copy(engine: Engine, settings: Settings, version: int) -> tuple[Engine, int]:
    """A separate in-memory database holding the stored interactions, demographics and items
    and ``version`` rebuilt from scratch over them (still building there); returns it and
    the copy's version number."""
    with UnitOfWork(engine) as uow:
        stored = uow.models.get(version)
        assert stored is not None
        user_ids = _all_user_ids(uow)
        interactions = [
            row for rows in uow.interactions.for_users(user_ids).values() for row in rows
        ]
        attributes = uow.users.attributes_many(user_ids)
        items = uow.items.get_many({row.item_id for row in interactions})
    reference = create_memory_database()
    with UnitOfWork(reference) as uow:
        uow.interactions.save_many(interactions)
        uow.users.save_attributes(attributes)
        uow.items.save_many(items.values())
        copy = uow.models.add(
            ModelVersion(None, ModelStatus.BUILDING, stored.config, stored.weights)
        )
        uow.commit()
    VersionRebuilder(settings, reference).rebuild(copy)
    return reference, copy


def _all_user_ids(uow: UnitOfWork) -> list[str]:
    found: list[str] = []
    while page := uow.interactions.user_ids(after=found[-1] if found else None, limit=1_000):
        found += page
    return found


def wait_until(condition: Any, what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running_trainer(settings: Settings, engine: Engine) -> Iterator[TrainerProcess]:
    """The trainer process's loop (schedule and control topic) in a thread of the test,
    with small samples; stopped at the end of the block."""
    service = TrainingRunService(settings, engine, training_users=200, evaluation_users=60)
    process = TrainerProcess(settings, engine, service=service)
    process.start()
    loop = threading.Thread(target=process.run_until_stopped)
    loop.start()
    try:
        yield process
    finally:
        process.request_stop()
        loop.join(timeout=60)
        process.stop()


@dataclass
class TrainerProcessHandle:
    """``streamrec trainer`` in a child process."""

    process: subprocess.Popen[str]

    def wait_for_line(self, text: str, timeout: float = WAIT_SECONDS) -> None:
        """Read the process's merged output until a line containing ``text``."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        for line in self._lines():
            seen.append(line)
            if text in line:
                return
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"no line with {text!r}; output:\n{''.join(seen)[-3000:]}")

    def _lines(self) -> Iterator[str]:
        assert self.process.stdout is not None
        yield from iter(self.process.stdout.readline, "")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)

    def wait(self, timeout: float = WAIT_SECONDS) -> tuple[int, str]:
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output


def start_trainer(settings: Settings, *arguments: str) -> TrainerProcessHandle:
    """``streamrec trainer ARGUMENTS`` in a process of its own."""
    return _start([sys.executable, "-m", "streamrec.cli.main", "trainer", *arguments], settings)


def start_stopping_trainer(settings: Settings, stage: str) -> TrainerProcessHandle:
    """A forced run that stops dead at ``stage`` (STAGE[:N], tests.integration.stopping_trainer)
    and says so, for the test to kill it there or to try a second trainer beside it."""
    return _start([sys.executable, "-m", "tests.integration.stopping_trainer", stage], settings)


def _start(command: list[str], settings: Settings) -> TrainerProcessHandle:
    from tests.integration.pipeline_support import settings_environment

    process = subprocess.Popen(
        command,
        cwd=REPOSITORY,
        env={
            **settings_environment(settings),
            "PYTHONUNBUFFERED": "1",
            # No metrics endpoint: parallel test processes would fight over the port.
            "STREAMREC_OBSERVABILITY__METRICS_PORT": "0",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return TrainerProcessHandle(process)
