"""The model registry: versions, their weights and scores, and which one is active.

At most one version is active: a partial unique index enforces it, and ``activate`` retires
the previous one in the same transaction.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     first = uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, {"clusters": 8}, b"w1"))
...     second = uow.models.add(ModelVersion(None, ModelStatus.CANDIDATE, {}, b"w2"))
...     uow.models.activate(second) == first, uow.models.get(first).status
(True, <ModelStatus.RETIRED: 'retired'>)
"""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Row as SqlRow
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage.errors import (
    ConcurrentActivationError,
    InvalidRecordError,
    UnknownModelVersionError,
)
from streamrec.storage.repositories.base import Repository
from streamrec.storage.tables import ModelVersionRow, table_of

_MODELS = table_of(ModelVersionRow)
_WITHOUT_WEIGHTS = [column for column in _MODELS.c if column.name != "weights"]


class ModelRepository(Repository):
    def add(self, model: ModelVersion) -> int:
        """Register ``model`` and return its new version number. Adding an active model
        activates it, retiring the active one."""
        if model.version is not None:
            raise InvalidRecordError("a model's version is assigned when it is added; pass None")
        values = {
            "status": ModelStatus.CANDIDATE.value
            if model.status is ModelStatus.ACTIVE
            else ModelStatus(model.status).value,
            "parent_version": model.parent_version,
            "config": model.config,
            "weights": model.weights,
            "metrics": model.metrics,
            "data_window": model.data_window,
            "reason": model.reason,
            "created_at": self._clock() if model.created_at is None else model.created_at,
            "promoted_at": model.promoted_at,
        }
        statement = insert(_MODELS).values(values).returning(_MODELS.c.version)
        version = int(self._connection.execute(statement).scalar_one())
        if model.status is ModelStatus.ACTIVE:
            self.activate(version)
        return version

    def get(self, version: int) -> ModelVersion | None:
        row = self._connection.execute(select(_MODELS).where(_MODELS.c.version == version)).first()
        return None if row is None else _model_from(row)

    def active(self) -> ModelVersion | None:
        """The serving version, with its weights."""
        statement = select(_MODELS).where(_MODELS.c.status == ModelStatus.ACTIVE.value)
        row = self._connection.execute(statement).first()
        return None if row is None else _model_from(row)

    def active_version(self) -> int | None:
        """The serving version's number only: cheap enough to poll for a switch."""
        statement = select(_MODELS.c.version).where(_MODELS.c.status == ModelStatus.ACTIVE.value)
        return self._connection.scalar(statement)

    def set_status(self, version: int, status: ModelStatus, reason: str | None = None) -> None:
        """Move ``version`` to ``status`` (ACTIVE goes through ``activate``); ``reason`` is
        kept when given."""
        status = ModelStatus(status)
        if status is ModelStatus.ACTIVE:
            self.activate(version, reason)
            return
        self._update(version, status=status.value, **_given(reason=reason))

    def activate(self, version: int, reason: str | None = None) -> int | None:
        """Make ``version`` the only active one; returns the version it replaced, if any."""
        previous = self.active_version()
        if previous == version:
            return previous
        retire = (
            update(_MODELS)
            .where(_MODELS.c.status == ModelStatus.ACTIVE.value, _MODELS.c.version != version)
            .values(status=ModelStatus.RETIRED.value)
        )
        self._connection.execute(retire)
        try:
            self._update(
                version,
                status=ModelStatus.ACTIVE.value,
                promoted_at=self._clock(),
                **_given(reason=reason),
            )
        except IntegrityError:
            raise ConcurrentActivationError(
                f"model version {version} was not activated: another version became active "
                "at the same time"
            ) from None
        return previous

    def _update(self, version: int, **values: Any) -> None:
        statement = update(_MODELS).where(_MODELS.c.version == version).values(values)
        if self._connection.execute(statement).rowcount == 0:
            raise UnknownModelVersionError(f"model version {version} is not registered")

    # Last, so that `list` in the annotations above still means the builtin.
    def list(self, *, with_weights: bool = False) -> builtins.list[ModelVersion]:
        """Every version, newest first; weights are b"" unless ``with_weights``."""
        columns = list(_MODELS.c) if with_weights else _WITHOUT_WEIGHTS
        statement = select(*columns).order_by(_MODELS.c.version.desc())
        return [_model_from(row) for row in self._connection.execute(statement)]


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _model_from(row: SqlRow[Any]) -> ModelVersion:
    mapping = row._mapping
    return ModelVersion(
        version=row.version,
        status=ModelStatus(row.status),
        config=row.config,
        weights=mapping.get("weights", b""),
        metrics=row.metrics,
        parent_version=row.parent_version,
        data_window=row.data_window,
        reason=row.reason,
        created_at=row.created_at,
        promoted_at=row.promoted_at,
    )
