"""``streamrec models list|show|runs|promote|rollback``: inspect and change the model registry.

``promote VERSION`` makes any registered version the active one; ``rollback`` promotes the
version that was active before the current one. A retired version whose state is still
current (no interaction written since it was retired) is flipped back at once; otherwise its
state is rebuilt first, in chunks, while the current version keeps serving. Both hold the
trainer's run lock, so they never overlap a training run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


# Training runs listed by `models runs` unless told otherwise.
DEFAULT_RUNS = 20
# A reason wraps at spaces in a narrow terminal, but never into a column narrower than this.
REASON_MIN_WIDTH = 24


@click.group(name="models")
def command() -> None:
    """Inspect the model registry; promote or roll back a version."""


@command.command(name="list")
@click.pass_obj
def list_command(settings: Settings) -> None:
    """Every registered version, newest first."""
    from rich.table import Table

    from streamrec.cli.display import print_table
    from streamrec.services.training_run import precision_key
    from streamrec.storage.unit_of_work import UnitOfWork

    key = precision_key(settings)
    with _database(settings) as engine, UnitOfWork(engine) as uow:
        versions = uow.models.list()
    table = Table(title="model versions")
    for column in ("version", "status", "parent", "created", "promoted", key):
        justify = "right" if column in ("version", "parent") else "left"
        table.add_column(column, justify=justify, no_wrap=True)
    table.add_column("reason", min_width=REASON_MIN_WIDTH)
    for model in versions:
        score = model.metrics.get(key)
        table.add_row(
            str(model.version),
            model.status.value,
            _shown(model.parent_version),
            _moment(model.created_at),
            _moment(model.promoted_at),
            "" if not isinstance(score, int | float) else f"{score:.4f}",
            model.reason or "",
        )
    print_table(table)


@command.command(name="show")
@click.argument("version", type=int)
@click.pass_obj
def show_command(settings: Settings, version: int) -> None:
    """Everything the registry knows of VERSION, with its rebuild progress."""
    from streamrec.errors import UserFacingError
    from streamrec.storage.unit_of_work import UnitOfWork

    with _database(settings) as engine, UnitOfWork(engine) as uow:
        model = uow.models.get(version)
        if model is None:
            raise UserFacingError(f"model version {version} is not registered")
        progress = uow.builds.rebuild_progress(version)
        users = uow.users.count(version)
    shown: dict[str, Any] = {
        "version": model.version,
        "status": model.status.value,
        "parent_version": model.parent_version,
        "created_at": _moment(model.created_at),
        "promoted_at": _moment(model.promoted_at),
        "reason": model.reason,
        "users_with_state": users,
        "metrics": model.metrics,
        "data_window": model.data_window,
        "rebuild": None
        if progress is None
        else {
            "users_done": progress.users_done,
            "users_total_at_start": progress.users_total,
            "users_built_by_rebuild": progress.users_built,
            "finished_at": _moment(progress.finished_at),
        },
        "architecture": model.config,
    }
    click.echo(json.dumps(shown, indent=2, default=str))


@command.command(name="runs")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_RUNS, show_default=True)
@click.pass_obj
def runs_command(settings: Settings, limit: int) -> None:
    """The latest training runs: trigger, times, outcome and reason."""
    from rich.table import Table

    from streamrec.cli.display import print_table
    from streamrec.storage.unit_of_work import UnitOfWork

    table = Table(title="training runs")
    for column in ("run", "trigger", "started", "seconds", "outcome", "candidate"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", min_width=REASON_MIN_WIDTH)
    with _database(settings) as engine, UnitOfWork(engine) as uow:
        latest = uow.training_runs.latest()
        # Run ids are consecutive: walking down from the latest lists them newest first.
        run_ids = [] if latest is None else range(latest.id, max(0, latest.id - limit), -1)
        runs = [run for run_id in run_ids if (run := uow.training_runs.get(run_id))]
    for run in runs:
        seconds = "" if run.finished_at is None else f"{run.finished_at - run.started_at:.1f}"
        table.add_row(
            str(run.id),
            run.trigger.value,
            _moment(run.started_at),
            seconds,
            run.outcome or "running",
            _shown(run.candidate_version),
            run.reason or "",
        )
    print_table(table)


@command.command(name="promote")
@click.argument("version", type=int)
@click.option("--reason", default=None, help="Recorded as the version's reason.")
@click.pass_obj
def promote_command(settings: Settings, version: int, reason: str | None) -> None:
    """Make VERSION the active version (rebuilding its state first if needed)."""
    _switch(settings, version, reason or f"promoted by an operator ({_now()})")


@command.command(name="rollback")
@click.option("--reason", default=None, help="Recorded as the version's reason.")
@click.pass_obj
def rollback_command(settings: Settings, reason: str | None) -> None:
    """Go back to the version that was active before the current one."""
    from streamrec.services.operator_actions import rollback_target

    with _database(settings) as engine:
        target = rollback_target(engine)
    _switch(settings, target, reason or f"rolled back by an operator ({_now()})")


def _switch(settings: Settings, version: int, reason: str) -> None:
    from rich.progress import Progress

    from streamrec.services.operator_actions import describe_switch, switch_model
    from streamrec.services.training_run import RunHooks
    from streamrec.storage.trainer import RebuildProgress
    from trainer.control import activation_announcer

    def not_announced(error: Exception) -> None:
        click.echo(f"(the flip was not announced on the control topic: {error})", err=True)

    with _database(settings) as engine, Progress(transient=True) as display:
        task = display.add_task(f"rebuilding version {version}", total=None)

        def on_progress(progress: RebuildProgress) -> None:
            display.update(task, completed=progress.users_done, total=progress.users_total)

        hooks = RunHooks(
            on_rebuild_progress=on_progress,
            on_activated=activation_announcer(settings, not_announced),
        )
        report = switch_model(settings, engine, version, reason, hooks)
    click.echo(describe_switch(version, report))


@contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """An engine for the settings' database, disposed at the end of the block."""
    from streamrec.storage import create_database_engine

    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        yield engine
    finally:
        engine.dispose()


def _moment(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _now() -> str:
    return _moment(time.time()) + " UTC"


def _shown(value: object) -> str:
    return "" if value is None else str(value)
