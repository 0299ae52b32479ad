"""Operator triggers over the real broker: ``streamrec train now --wait`` starts a run at once
through the control topic and prints how it ended; malformed control messages are refused
without stopping the listener; a flip is announced on the topic."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from streamrec.cli.main import main
from streamrec.config import Settings
from streamrec.kafka import create_producer
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire.control import ModelActivated, parse_control
from tests.integration.pipeline_support import on_postgresql, read_topic, settings_environment
from tests.integration.trainer_support import (
    activate_with_state,
    running_trainer,
    store,
    stream_interactions,
    trained_model,
    trainer_settings,
)

MALFORMED = [b"{not json", b'{"schema_version": 1, "type": "train"}', b'{"schema_version": 9}']


@on_postgresql
def test_train_now_waits_for_the_run_it_started_and_reports_its_outcome(
    kafka_settings: Settings,
    database_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = trainer_settings(kafka_settings, database_url, promotion_tolerance=1.0)
    interactions = stream_interactions()
    store(engine, interactions)
    previous = activate_with_state(engine, settings, trained_model(settings, interactions))
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)
    producer = create_producer(settings)
    try:
        for payload in MALFORMED:
            producer.send(settings.topics.control, value=payload)
        producer.flush()
    finally:
        producer.close()

    with running_trainer(settings, engine) as process:
        main(["train", "now", "--wait", "--force", "--reason", "a test asked", "--timeout", "120"])

    output = capsys.readouterr().out
    request_id = re.search(r"train request (\w+) sent", output)
    finished = re.search(r"run (\d+): promoted: ", output)
    assert request_id is not None and finished is not None, output
    run_id = int(finished.group(1))
    assert f"run {run_id} started" in output
    with UnitOfWork(engine) as uow:
        run = uow.training_runs.get(run_id)
        active = uow.models.active_version()
    assert run is not None and run.trigger is TrainingTrigger.OPERATOR
    assert run.metrics["request_id"] == request_id.group(1)
    assert run.metrics["trigger_detail"] == "a test asked"
    assert run.candidate_version == active != previous
    messages = [
        parse_control(record.value) for record in read_topic(settings, settings.topics.control)
    ]
    flips = [(m.version, m.previous_version) for m in messages if isinstance(m, ModelActivated)]
    assert flips == [(active, previous)]
    refused = process.metrics.trainer.sample(
        "streamrec_trainer_commands_total", trigger="unknown", decision="refused"
    )
    assert refused == len(MALFORMED)
