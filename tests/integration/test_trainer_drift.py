"""Drift in the synthetic stream triggers a retrain: the prequential hits of a model trained
before a planted drift go into ADWIN, which signals after the drift (and not before); the
signal reaches the trainer over the control topic, starts one drift run recorded with its
reason, and a repeat within the rate limit is suppressed."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence

from sqlalchemy import Engine

from consumers import ConsumerHooks
from streamrec.config import Settings
from streamrec.datasets.base import RatingScale
from streamrec.datasets.synthetic import SyntheticStream
from streamrec.drift import DriftSignal, HitRateDriftDetector
from streamrec.events import InteractionEvent
from streamrec.model.history import UserHistory
from streamrec.model.table_replay import EfficientRecRecommender
from streamrec.services.batch import BatchResult, SourceRecord
from streamrec.state import Interaction, ModelStatus
from streamrec.storage.records import TrainingRun, TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.validation import parse_interaction
from streamrec.wire.control import TrainCommand, parse_control
from tests.integration.pipeline_support import (
    consume_in_process,
    on_postgresql,
    pipeline_settings,
    produce,
    read_topic,
)
from tests.integration.trainer_support import (
    PLANTED_GROUPS,
    register,
    running_trainer,
    store,
    trainer_settings,
    wait_until,
)
from trainer.control import ControlPublisher
from trainer.process import TrainerProcess

# Every group swaps all its items halfway through the stream. Enough events on each side of
# the drift that ADWIN's evidence does not hinge on how the broker cuts the stream into batches.
DRIFTING = dataclasses.replace(PLANTED_GROUPS, users=1_000, drift_at=0.5, drift_share=1.0, seed=3)


def prequential_hits(
    stream: SyntheticStream, recommender: EfficientRecRecommender, count: int
) -> tuple[list[bool], list[float]]:
    """For each event in time order: was its item in the top ``count`` recommended from the
    user's history before it? And when did it happen?"""
    scale = RatingScale(1.0, 5.0)
    histories: dict[str, list[tuple[str, float]]] = {}
    asked: list[UserHistory] = []
    items: list[str] = []
    times: list[float] = []
    for event in stream.events():
        history = histories.setdefault(event.user_id, [])
        asked.append(UserHistory(event.user_id, tuple(history)))
        items.append(event.item_id)
        times.append(event.timestamp)
        history.append((event.item_id, scale.weight(event.value or 0.0)))
    recommended = recommender.recommend_many(asked, count)
    return [item in top for item, top in zip(items, recommended, strict=True)], times


@on_postgresql
def test_drift_in_the_synthetic_stream_triggers_one_rate_limited_retrain(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(kafka_settings, database_url, drift_min_interval_seconds=3_600)
    stream = SyntheticStream(DRIFTING)
    dataset = stream.to_dataset()
    table = dataset.table
    drift_time = stream.drift_time
    assert drift_time is not None
    before_drift = table.subset(table.timestamps < drift_time)
    recommender = EfficientRecRecommender(settings.model, settings.serving, settings.training)
    recommender.fit(before_drift, {}, {})
    assert recommender.model is not None
    # The serving model is the one trained before the drift; all stored data is new to it.
    register(engine, recommender.model, ModelStatus.ACTIVE, created_at=0.0)
    store(
        engine,
        [
            Interaction(
                table.user_vocabulary[table.users[row]],
                table.item_vocabulary[table.items[row]],
                float(table.weights[row]),
                f"e{row}",
                "rating",
                float(table.timestamps[row]),
            )
            for row in range(len(table))
        ],
    )

    hits, times = prequential_hits(stream, recommender, settings.serving.recommendations)
    detector = HitRateDriftDetector(clock=lambda: 0.0)
    signals: list[tuple[float, DriftSignal]] = [
        (moment, signal)
        for hit, moment in zip(hits, times, strict=True)
        if (signal := detector.learn_one(hit)) is not None
    ]
    assert signals, "ADWIN saw no drift"
    assert all(moment >= drift_time for moment, _ in signals), "a false alarm before the drift"
    reason = signals[0][1].describe()

    with running_trainer(settings, engine) as process:
        publisher = ControlPublisher(settings)
        try:
            # Two consumers saw the same drift: only the first starts a run.
            for _ in range(2):
                publisher.publish(
                    TrainCommand(uuid.uuid4().hex, TrainingTrigger.DRIFT, time.time(), reason)
                )
        finally:
            publisher.close()
        run = wait_until(lambda: _finished_drift_run(engine), "the drift run")
        wait_until(lambda: _suppressed(process) == 1, "the suppressed repeat")

    assert run.metrics["trigger_detail"] == reason
    assert reason.startswith("ADWIN: the prequential hit rate fell from ")
    assert run.outcome in ("promoted", "rejected"), run.reason
    with UnitOfWork(engine) as uow:
        latest = uow.training_runs.latest()
    assert latest is not None and latest.id == run.id  # no second run


def _finished_drift_run(engine: Engine) -> TrainingRun | None:
    with UnitOfWork(engine) as uow:
        run = uow.training_runs.latest(TrainingTrigger.DRIFT)
    return run if run is not None and run.outcome is not None else None


def _suppressed(process: TrainerProcess) -> float | None:
    return process.metrics.trainer.sample(
        "streamrec_trainer_commands_total", trigger="drift", decision="suppressed"
    )


@on_postgresql
def test_a_consumer_seeing_drift_asks_the_trainer_for_a_drift_run(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    """End to end: the consumer applies the drifting stream under a model trained before the
    drift, its detector signals a fall of the prequential hit rate after the drift point, it
    publishes a drift command on the control topic, and the trainer records a drift run."""
    settings = trainer_settings(
        # Small batches: hits are judged against the state before each batch, so a batch must
        # span a small part of each user's history.
        pipeline_settings(kafka_settings, database_url, max_poll_records=25),
        database_url,
        drift_min_interval_seconds=3_600,
    )
    stream = SyntheticStream(DRIFTING)
    table = stream.to_dataset().table
    drift_time = stream.drift_time
    assert drift_time is not None
    recommender = EfficientRecRecommender(settings.model, settings.serving, settings.training)
    recommender.fit(table.subset(table.timestamps < drift_time), {}, {})
    assert recommender.model is not None
    register(engine, recommender.model, ModelStatus.ACTIVE, created_at=0.0)
    events = list(stream.events())
    produce(settings, events)

    signalled_at: list[float] = []

    def on_batch(result: BatchResult, timing: object, records: Sequence[SourceRecord]) -> None:
        if result.drift_signals:
            signalled_at.append(max(_event_time(record, settings) for record in records))

    with running_trainer(settings, engine):
        summary = consume_in_process(
            settings, engine, idle_exit_seconds=2.0, hooks=ConsumerHooks(on_batch=on_batch)
        )
        assert summary.counters.interactions_applied == len(events)
        assert signalled_at, "the consumer's detector saw no drift"
        assert all(moment >= drift_time for moment in signalled_at), "a false alarm before it"
        run = wait_until(lambda: _finished_drift_run(engine), "the drift run")

    commands = [
        parse_control(record.value) for record in read_topic(settings, settings.topics.control)
    ]
    drift_commands = [
        command
        for command in commands
        if isinstance(command, TrainCommand) and command.trigger is TrainingTrigger.DRIFT
    ]
    assert len(drift_commands) == len(signalled_at)
    assert run.metrics["trigger_detail"] == drift_commands[0].reason
    assert run.metrics["trigger_detail"].startswith("ADWIN: the prequential hit rate fell from ")
    assert run.outcome in ("promoted", "rejected", "skipped"), run.reason


def _event_time(record: SourceRecord, settings: Settings) -> float:
    event = parse_interaction(record.value, settings.events)
    assert isinstance(event, InteractionEvent)
    return event.timestamp
