"""The trainer's run log: what started a run, and how it ended.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> with UnitOfWork(create_memory_database()) as uow:
...     run_id = uow.training_runs.start(TrainingTrigger.OPERATOR)
...     uow.training_runs.finish(run_id, "skipped", reason="only 3 new events")
...     uow.training_runs.get(run_id).outcome
'skipped'
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row as SqlRow
from sqlalchemy import insert, select, update

from streamrec.storage.errors import InvalidRecordError
from streamrec.storage.records import TrainingRun, TrainingTrigger
from streamrec.storage.repositories.base import Repository
from streamrec.storage.tables import TrainingRunRow, table_of

_RUNS = table_of(TrainingRunRow)


class TrainingRunRepository(Repository):
    def start(
        self,
        trigger: TrainingTrigger | str,
        *,
        parent_version: int | None = None,
        started_at: float | None = None,
    ) -> int:
        """Record a run that starts now (or at ``started_at``); returns its id."""
        try:
            trigger = TrainingTrigger(trigger)
        except ValueError:
            choices = ", ".join(choice.value for choice in TrainingTrigger)
            raise InvalidRecordError(
                f"unknown training trigger {trigger!r}: use one of {choices}"
            ) from None
        values: dict[str, Any] = {
            "trigger": trigger.value,
            "started_at": self._clock() if started_at is None else started_at,
            "metrics": {},
            "parent_version": parent_version,
        }
        statement = insert(_RUNS).values(values).returning(_RUNS.c.id)
        return int(self._connection.execute(statement).scalar_one())

    def finish(
        self,
        run_id: int,
        outcome: str,
        *,
        reason: str | None = None,
        metrics: dict[str, Any] | None = None,
        candidate_version: int | None = None,
    ) -> None:
        """Record how run ``run_id`` ended, e.g. "promoted", "rejected", "skipped", "failed"."""
        values = {
            "finished_at": self._clock(),
            "outcome": outcome,
            "reason": reason,
            "metrics": metrics or {},
            "candidate_version": candidate_version,
        }
        statement = update(_RUNS).where(_RUNS.c.id == run_id).values(values)
        if self._connection.execute(statement).rowcount == 0:
            raise InvalidRecordError(f"training run {run_id} was never started")

    def get(self, run_id: int) -> TrainingRun | None:
        row = self._connection.execute(select(_RUNS).where(_RUNS.c.id == run_id)).first()
        return None if row is None else _run_from(row)

    def latest(self, trigger: TrainingTrigger | None = None) -> TrainingRun | None:
        """The most recently started run, optionally of one trigger (drift runs are
        rate-limited by the last one's start)."""
        statement = select(_RUNS).order_by(_RUNS.c.started_at.desc(), _RUNS.c.id.desc()).limit(1)
        if trigger is not None:
            statement = statement.where(_RUNS.c.trigger == TrainingTrigger(trigger).value)
        row = self._connection.execute(statement).first()
        return None if row is None else _run_from(row)


def _run_from(row: SqlRow[Any]) -> TrainingRun:
    return TrainingRun(**{**row._asdict(), "trigger": TrainingTrigger(row.trigger)})
