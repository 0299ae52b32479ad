"""Scale-out: two consumers in one group split the partitions and end in the state one
consumer reaches alone; so do two whose group is rebalanced mid-stream, when the second
joins and when one of them is killed."""

from __future__ import annotations

import random
import re
import time
from urllib.error import URLError
from urllib.request import urlopen

from sqlalchemy import Engine

from streamrec.benchmarks.replay_thread import ReplayThread
from streamrec.broker import free_port
from streamrec.config import Settings
from streamrec.storage import UnitOfWork
from tests.fixtures.snapshots import differences
from tests.integration.chaos_support import (
    assert_same_as_clean_run,
    chaos_settings,
    kill_hard,
    kill_streamrec_children_left_behind,  # noqa: F401 (an autouse fixture)
    stored_records,
    wait_for_stored_records,
)
from tests.integration.pipeline_support import (
    ConsumerProcess,
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
from tests.integration.trainer_support import wait_until

EVENTS = 600
SEED = 1_618
REPLAYED_EVENTS = 1_500
# Slow enough that the stream is still arriving when the group changes, twice.
REPLAY_EVENTS_PER_SECOND = 100.0
PROGRESS_BETWEEN_REBALANCES = (20, 200)
HELD_BACK_EVENTS = 300
PAUSE_BEFORE_KILL_SECONDS = (0.0, 0.3)


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


@on_postgresql
def test_a_group_rebalanced_mid_stream_by_a_join_and_a_kill_ends_in_the_state_of_one(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = chaos_settings(kafka_settings, database_url)
    model = register_model(engine, settings)
    events = interaction_stream(REPLAYED_EVENTS, seed=23, users=60)
    items = {item.item_id: item for item in catalogue()}
    # Held back until the group is down to one, so that the survivor has work left.
    replayed, tail = events[:-HELD_BACK_EVENTS], events[-HELD_BACK_EVENTS:]
    replay = ReplayThread(settings, items, replayed, rate=REPLAY_EVENTS_PER_SECOND).start()
    rng = random.Random(SEED)

    first = _consumer_with_readiness(settings)
    wait_for_stored_records(engine, settings, 1, alive=[first[0].process])
    # The second joins mid-stream: the group rebalances and the two split the partitions.
    second = _consumer_with_readiness(settings)
    consumers = [first, second]
    wait_until(lambda: all(_ready(port) for _, port in consumers), "both to own partitions")
    due = min(
        stored_records(engine, settings) + rng.randint(*PROGRESS_BETWEEN_REBALANCES),
        len(replayed),
    )
    wait_for_stored_records(engine, settings, due, alive=[first[0].process, second[0].process])
    # Then one of them dies: the group rebalances again, and the other takes everything.
    killed, survivor = rng.sample([first[0], second[0]], 2)
    time.sleep(rng.uniform(*PAUSE_BEFORE_KILL_SECONDS))
    kill_hard(killed.process)

    replay.join(timeout=60)
    assert replay.done()
    produce(settings, tail)
    wait_for_stored_records(engine, settings, len(events), alive=[survivor.process])
    survivor.process.terminate()  # finish the batch, commit, leave the group
    status, output = survivor.wait(timeout=60)
    assert status == 0, output
    assert int(re.search(r"consumed (\d+) records", output).group(1)) > 0, output
    assert_same_as_clean_run(settings, model, engine, records=len(events))


def _consumer_with_readiness(settings: Settings) -> tuple[ConsumerProcess, int]:
    """``streamrec consume`` serving /readyz on a port of its own, and that port."""
    port = free_port()
    observability = settings.observability.model_copy(update={"metrics_port": port})
    return start_consumer(settings.model_copy(update={"observability": observability})), port


def _ready(port: int) -> bool:
    """Whether the consumer on ``port`` owns partitions (its /readyz answers 200)."""
    try:
        with urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (URLError, OSError):
        return False
