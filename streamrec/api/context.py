"""What every request of ``streamrec serve`` shares: the settings, the database, the loaded
model, the broker reader, the throughput meter, the action runner and the session keys; and
the two actions, which go through the same code as ``streamrec train now`` and ``streamrec
models rollback`` (``streamrec.services.operator_actions``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from streamrec.api.actions import ActionRunner
from streamrec.api.broker_offsets import BrokerLogRanges
from streamrec.api.security import SessionKeys
from streamrec.api.throughput import ThroughputMeter
from streamrec.config import Settings
from streamrec.services.browsing import PipelineHealth, pipeline_health
from streamrec.services.explaining import Explainer
from streamrec.services.operator_actions import (
    describe_switch,
    operator_train_command,
    rollback_target,
    switch_model,
)
from streamrec.services.status import stored_offsets
from streamrec.services.training_run import RunHooks
from streamrec.storage.trainer import RebuildProgress
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire.control import ControlMessage

# Publishes one control message and waits for the broker's acknowledgement.
ControlPublish = Callable[[ControlMessage], None]


@dataclass(frozen=True, slots=True)
class StatusView:
    """The pipeline's health and the consumers' throughput (records/s; None until this
    process has seen the stored offsets twice)."""

    health: PipelineHealth
    records_per_second: float | None


def publish_control(settings: Settings) -> ControlPublish:
    """Publish on the control topic as ``streamrec train now`` does (topic made if missing)."""

    def publish(message: ControlMessage) -> None:
        from streamrec.kafka import ensure_topics
        from trainer.control import ControlPublisher

        ensure_topics(settings, [settings.topics.control])
        publisher = ControlPublisher(settings)
        try:
            publisher.publish(message)
        finally:
            publisher.close()

    return publish


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    explainer: Explainer
    broker: BrokerLogRanges
    keys: SessionKeys
    publish: ControlPublish
    throughput: ThroughputMeter = field(default_factory=ThroughputMeter)
    actions: ActionRunner = field(default_factory=ActionRunner)
    clock: Callable[[], float] = time.time

    @classmethod
    def create(
        cls, settings: Settings, engine: Engine, publish: ControlPublish | None = None
    ) -> ApiContext:
        api = settings.api
        return cls(
            settings=settings,
            engine=engine,
            explainer=Explainer(settings.serving),
            broker=BrokerLogRanges(settings),
            keys=SessionKeys(
                None if api.operator_token is None else api.operator_token.get_secret_value(),
                None if api.read_token is None else api.read_token.get_secret_value(),
            ),
            publish=publish or publish_control(settings),
        )

    @property
    def input_topics(self) -> list[str]:
        return [self.settings.topics.interactions, self.settings.topics.items]

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    def status(self) -> StatusView:
        """Lag per partition (the broker's end offsets against the stored offsets, when the
        broker answers), throughput, dead letters by reason and the active version."""
        group = self.settings.kafka.consumer_group
        with self.unit_of_work() as uow:
            stored = stored_offsets(uow, group, self.input_topics)
        log_ranges, broker_error = self.broker.read(self.input_topics, stored)
        with self.unit_of_work() as uow:
            health = pipeline_health(uow, group, self.input_topics, log_ranges, broker_error)
        rate = self.throughput.observe(time.monotonic(), health.stored_records)
        return StatusView(health, rate)

    def request_training(self, reason: str | None, force: bool) -> bool:
        """Send the trainer a ``train`` request, as ``streamrec train now`` does; False when
        another action is running."""
        command = operator_train_command(
            reason or "requested from the dashboard", force, self.clock()
        )

        def work(report: Callable[[str], None]) -> str:
            report(f"sending train request {command.request_id}")
            self.publish(command)
            return (
                f"train request {command.request_id} sent; the trainer's run appears under "
                "training runs (is `streamrec trainer` running?)"
            )

        return self.actions.start("train now", work)

    def roll_back(self, reason: str | None) -> tuple[bool, int]:
        """Go back to the previously active version, as ``streamrec models rollback`` does,
        in the background; returns (started, target version). Raises
        NothingToRollBackError when there is none."""
        target = rollback_target(self.engine)
        why = reason or f"rolled back from the dashboard ({time.strftime('%Y-%m-%d %H:%M:%S')})"

        def work(report: Callable[[str], None]) -> str:
            from trainer.control import activation_announcer

            notes: list[str] = []

            def on_progress(progress: RebuildProgress) -> None:
                report(
                    f"rebuilding version {target}: {progress.users_done} of "
                    f"{progress.users_total} users"
                )

            def not_announced(error: Exception) -> None:
                notes.append(f" (the flip was not announced on the control topic: {error})")

            hooks = RunHooks(
                on_rebuild_progress=on_progress,
                on_activated=activation_announcer(self.settings, not_announced),
            )
            result = switch_model(self.settings, self.engine, target, why, hooks)
            return describe_switch(target, result) + "".join(notes)

        return self.actions.start(f"roll back to version {target}", work), target

    def close(self) -> None:
        self.actions.wait(timeout=5.0)
        self.broker.close()
