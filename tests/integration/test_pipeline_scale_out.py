"""Scale-out: two consumers in one group split the partitions and end in the state one
consumer reaches alone."""

from __future__ import annotations

import re

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.services.snapshot import differences
from streamrec.storage import UnitOfWork
from tests.integration.pipeline_support import (
    catalogue,
    database_snapshot,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    produce,
    reference_snapshot,
    register_model,
    start_consumer,
)

EVENTS = 600


@on_postgresql
def test_two_consumers_in_one_group_end_in_the_state_of_one(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    model = register_model(engine, settings)
    events = interaction_stream(EVENTS, seed=21, users=60)
    produce(settings, events, items=catalogue())

    consumers = [start_consumer(settings, "--idle-exit", "3") for _ in range(2)]
    outputs = [consumer.wait(timeout=90) for consumer in consumers]
    for status, output in outputs:
        assert status == 0, output
    records = [int(re.search(r"consumed (\d+) records", output).group(1)) for _, output in outputs]
    # Both took part. A record may be read twice around a rebalance, never applied twice.
    assert all(count > 0 for count in records), outputs
    assert sum(records) >= EVENTS + len(catalogue())

    assert differences(reference_snapshot(settings, model), database_snapshot(database_url)) == []
    with UnitOfWork(engine) as uow:
        stored = uow.offsets.get(settings.kafka.consumer_group, settings.topics.interactions)
    assert sum(stored.values()) == EVENTS
