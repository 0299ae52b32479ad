"""What an operator may do to the running system, shared by the CLI and the dashboard so both
act alike: ask the trainer for a run now (``streamrec train now``), and go back to the version
that was active before the current one (``streamrec models rollback``).

A train request is a ``train`` message on the control topic; publishing it is left to the
caller (``trainer.control.ControlPublisher``), since this layer does not know Kafka. A roll
back goes through ``TrainingRunService.switch_to``, which holds the trainer's run lock and
rebuilds the target's state first when it is stale.

>>> from streamrec.state import ModelStatus, ModelVersion
>>> versions = [ModelVersion(1, ModelStatus.RETIRED, {}, b"", promoted_at=10.0),
...             ModelVersion(2, ModelStatus.RETIRED, {}, b"", promoted_at=20.0),
...             ModelVersion(3, ModelStatus.ACTIVE, {}, b"", promoted_at=30.0)]
>>> previous_version(versions).version
2
>>> operator_train_command("new catalogue", force=False, now=5.0, request_id="r-1").trigger
<TrainingTrigger.OPERATOR: 'operator'>
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.errors import UserFacingError
from streamrec.services.rebuild import RebuildReport
from streamrec.services.training_run import RunHooks, SwitchRefusedError, TrainingRunService
from streamrec.state import ModelStatus, ModelVersion
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire.control import TrainCommand


class NothingToRollBackError(UserFacingError):
    """No version was active before the current one."""


def operator_train_command(
    reason: str | None, force: bool, now: float, request_id: str | None = None
) -> TrainCommand:
    """The ``train`` request of an operator (a fresh request id unless given)."""
    return TrainCommand(
        request_id=request_id or uuid.uuid4().hex,
        trigger=TrainingTrigger.OPERATOR,
        requested_at=now,
        reason=reason or "streamrec train now",
        force=force,
    )


def previous_version(versions: list[ModelVersion]) -> ModelVersion | None:
    """The retired version that was active most recently (the latest promotion)."""
    retired = [
        model
        for model in versions
        if model.status is ModelStatus.RETIRED and model.promoted_at is not None
    ]
    return max(retired, key=lambda model: model.promoted_at or 0.0, default=None)


def rollback_target(engine: Engine) -> int:
    """The version a roll back would make active; raises NothingToRollBackError."""
    with UnitOfWork(engine) as uow:
        target = previous_version(uow.models.list())
    if target is None or target.version is None:
        raise NothingToRollBackError("no earlier active version to roll back to")
    return target.version


def switch_model(
    settings: Settings,
    engine: Engine,
    version: int,
    reason: str,
    hooks: RunHooks | None = None,
) -> RebuildReport | None:
    """Make ``version`` active (``TrainingRunService.switch_to``): None when its state was
    still current and it was flipped back at once, else the rebuild's report. A run holding
    the lock is reported as a UserFacingError."""
    try:
        return TrainingRunService(settings, engine, hooks=hooks).switch_to(version, reason)
    except SwitchRefusedError as error:
        raise UserFacingError(str(error)) from None


def describe_switch(version: int, report: RebuildReport | None) -> str:
    """One line saying how a switch ended, as the CLI prints it.

    >>> describe_switch(3, None)
    'version 3 is active again (its state was still current)'
    """
    if report is None:
        return f"version {version} is active again (its state was still current)"
    return (
        f"version {version} is active: rebuilt {report.users_done} users in "
        f"{report.seconds:.1f} s ({report.users_per_second:.0f} users/s)"
    )
