"""Database outage: the consumer's connection is dropped by the server in the middle of a
batch; the batch is retried with backoff, and nothing is lost or applied twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, text

from consumers import ConsumerHooks
from streamrec.config import Settings
from streamrec.services.snapshot import differences
from streamrec.storage import UnitOfWork, create_database_engine
from tests.integration.pipeline_support import (
    catalogue,
    consume_in_process,
    database_snapshot,
    interaction_stream,
    on_postgresql,
    pipeline_settings,
    produce,
    reference_snapshot,
    register_model,
)

EVENTS = 300
# Late enough to be inside the transaction of a batch that carries interactions.
TERMINATE_AT_STATEMENT = 40


@on_postgresql
def test_a_connection_dropped_mid_batch_is_retried_without_loss(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    model = register_model(engine, settings)
    produce(settings, interaction_stream(EVENTS, seed=31), items=catalogue())

    administrator = create_database_engine(database_url)
    statements = 0
    terminated: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def drop_the_connection_once(connection: Any, *arguments: Any) -> None:
        nonlocal statements
        statements += 1
        if statements == TERMINATE_AT_STATEMENT and not terminated:
            pid = connection.connection.dbapi_connection.info.backend_pid
            with administrator.begin() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            terminated.append(pid)

    retries: list[BaseException] = []
    try:
        consume_in_process(
            settings,
            engine,
            hooks=ConsumerHooks(on_retry=lambda error, delay: retries.append(error)),
        )
    finally:
        event.remove(engine, "before_cursor_execute", drop_the_connection_once)
        administrator.dispose()

    assert terminated, "the connection was never dropped"
    assert retries, "the failed batch was not retried"
    assert differences(reference_snapshot(settings, model), database_snapshot(database_url)) == []
    with UnitOfWork(engine) as uow:
        stored = uow.offsets.get(settings.kafka.consumer_group, settings.topics.interactions)
    assert sum(stored.values()) == EVENTS
