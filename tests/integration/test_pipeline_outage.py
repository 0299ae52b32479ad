"""Database outage: the consumer's connection is dropped by the server in the middle of a
batch, once at a chosen statement and, in a real ``streamrec consume`` process, again and
again at moments a seeded RNG picks; the batch is retried with backoff, and nothing is lost
or applied twice."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from sqlalchemy import Engine, event, text

from consumers import ConsumerHooks
from streamrec.benchmarks.replay_thread import ReplayThread
from streamrec.config import Settings
from streamrec.storage import UnitOfWork, create_database_engine
from tests.fixtures.snapshots import differences
from tests.integration.chaos_support import (
    active_sessions,
    assert_same_as_clean_run,
    chaos_settings,
    kill_streamrec_children_left_behind,  # noqa: F401 (an autouse fixture)
    terminate_backend,
    wait_for_stored_records,
    with_session_name,
)
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
    start_consumer,
)

EVENTS = 300
# Late enough to be inside the transaction of a batch that carries interactions.
TERMINATE_AT_STATEMENT = 40
SEED = 3_1415
TERMINATIONS = 5
REPLAYED_EVENTS = 1_200
# Long enough that the consumer is busy for the whole of the terminations.
REPLAY_EVENTS_PER_SECOND = 150.0
PAUSE_BETWEEN_TERMINATIONS_SECONDS = (0.0, 0.5)
RETRY_LINE = "transient failure, retrying the batch"


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


@on_postgresql
def test_a_consumer_whose_sessions_are_terminated_again_and_again_loses_nothing(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    session_name = f"streamrec-chaos-{uuid.uuid4().hex[:10]}"
    settings = with_session_name(chaos_settings(kafka_settings, database_url), session_name)
    model = register_model(engine, settings)
    events = interaction_stream(REPLAYED_EVENTS, seed=32, users=50)
    items = {item.item_id: item for item in catalogue()}
    replay = ReplayThread(settings, items, events, rate=REPLAY_EVENTS_PER_SECOND).start()
    consumer = start_consumer(settings, "--idle-exit", "3")
    # A consumer that cannot reach the database when it starts exits with the reason: the
    # outage under test is the one that comes once it is consuming.
    wait_for_stored_records(engine, settings, 1, alive=[consumer.process])
    rng = random.Random(SEED)

    # Each termination hits a session of the consumer inside a statement or a transaction:
    # a batch (or its acknowledgement) in flight, possibly the retry of the last one.
    terminated: list[str] = []
    deadline = time.monotonic() + 60
    while len(terminated) < TERMINATIONS:
        assert consumer.process.poll() is None, consumer.wait()[1]
        assert time.monotonic() < deadline, f"only {len(terminated)} sessions caught mid-batch"
        sessions = active_sessions(engine, session_name)
        if sessions:
            pid, state = rng.choice(sessions)
            if terminate_backend(engine, pid):
                terminated.append(state)
                time.sleep(rng.uniform(*PAUSE_BETWEEN_TERMINATIONS_SECONDS))

    replay.join(timeout=60)
    status, output = consumer.wait(timeout=120)
    assert status == 0, output
    # Failed attempts were retried rather than skipped. (A session whose statement ended
    # just before its termination is found dead by the pool's ping and replaced without a
    # failed attempt, so there may be fewer retries than terminations.)
    assert RETRY_LINE in output, output
    assert_same_as_clean_run(settings, model, engine, records=len(events))
