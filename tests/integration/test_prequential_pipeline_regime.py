"""The pipeline's prequential bench on the real broker: the baselines are refreshed at the
consumer's own batch boundaries, and the scheduled trainer switches versions during the
replay on the stream's clock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

import streamrec.benchmarks.consumer_batches as consumer_batches
import streamrec.benchmarks.prequential_in_process as prequential_in_process
from streamrec.benchmarks.prequential import run_prequential
from streamrec.benchmarks.stream_clock_trainer import StreamSchedule
from streamrec.config import Settings
from streamrec.datasets.synthetic import SyntheticStream
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.services.batch import SourceRecord
from tests.integration import trainer_support

EVENTS = 1_500
# Not a divisor of the training prefix (300 events): fixed batches of this size counted from
# the prefix would not line up with the consumer's.
BATCH = 37


class BatchProbe:
    """A baseline that answers nothing and remembers the event ids of each batch it learned."""

    name = "probe"

    def __init__(self) -> None:
        self.learned: list[tuple[str, ...]] = []

    def recommend_many(self, user_ids: Sequence[str], count: int) -> list[list[str]]:
        return [[] for _ in user_ids]

    def learn_many(self, events: Sequence[AcceptedInteraction]) -> None:
        self.learned.append(tuple(accepted.event.event_id for accepted in events))


def _settings(kafka_settings: Settings, database_url: str, **trainer: Any) -> Settings:
    settings = trainer_support.trainer_settings(kafka_settings, database_url, **trainer)
    return settings.model_copy(
        update={
            "model": settings.model.model_copy(update={"hash_buckets": 1024}),
            "kafka": settings.kafka.model_copy(update={"max_poll_records": BATCH}),
        }
    )


def test_the_baselines_are_refreshed_at_the_consumers_batch_boundaries(
    kafka_settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer_saw: list[tuple[str, ...]] = []

    def record_consumer_batch(result: Any, timing: Any, records: Sequence[SourceRecord]) -> None:
        # The run's topics have names of their own: interactions are the records with an id.
        documents = [json.loads(record.value) for record in records if record.value]
        ids = [document["event_id"] for document in documents if "event_id" in document]
        if ids:
            consumer_saw.append(tuple(ids))

    chained = consumer_batches.chained_hooks
    monkeypatch.setattr(
        consumer_batches,
        "chained_hooks",
        lambda *on_batch: chained(record_consumer_batch, *on_batch),
    )
    probe = BatchProbe()
    monkeypatch.setattr(prequential_in_process, "baseline_methods", lambda *_: [probe])
    settings = _settings(kafka_settings, database_url)
    dataset = SyntheticStream(trainer_support.PLANTED_GROUPS).to_dataset()

    run = run_prequential(
        settings,
        dataset,
        limit=EVENTS,
        train_share=0.2,
        training_steps=5,
        window=100,
        schedule=None,
        announce=lambda _: None,
    )

    assert consumer_saw, "the consumer's batches were not seen"
    assert run.batches == len(consumer_saw)
    # The warm-up (the batches without a scored event) is learned in one call, then every
    # batch of the consumer is one batch of the baseline, in the consumer's order.
    flat = [event_id for batch in consumer_saw for event_id in batch]
    assert [event_id for batch in probe.learned for event_id in batch] == flat
    assert probe.learned[1:] == consumer_saw[len(consumer_saw) - len(probe.learned) + 1 :]
    assert run.boards["probe"].events == EVENTS - int(EVENTS * 0.2)


def test_the_trainer_switches_versions_during_the_replay(
    kafka_settings: Settings, database_url: str
) -> None:
    # Every candidate is promoted: the test is about the switch, not the guard.
    settings = _settings(kafka_settings, database_url, promotion_tolerance=1.0)
    dataset = SyntheticStream(trainer_support.PLANTED_GROUPS).to_dataset()

    run = run_prequential(
        settings,
        dataset,
        limit=EVENTS,
        train_share=0.2,
        training_steps=5,
        window=100,
        baselines=False,
        schedule=StreamSchedule(every_events=500),
        announce=lambda _: None,
    )

    assert run.trainer is not None
    runs = run.trainer["runs"]
    assert [each["applied_events"] >= 500 for each in runs] == [True] * len(runs) and runs
    assert run.trainer["versions_switched"] >= 1, runs
    assert runs[-1]["active_version"] > 1
    # Every event was still judged from the topics, across the switches.
    assert run.unanswered == 0
    assert run.boards["streamrec (pipeline)"].events == EVENTS - int(EVENTS * 0.2)
    assert "fine-tuned every 500 events" in run.model_mode
