"""The item neighbours kept by the database adapter are the in-memory adapter's: the same
events, learned by ``EfficientRecStream`` in the same batches over either state, give the
same co-occurrence counts, the same top-k neighbour lists (ties by item id included) and
the same popularity, on SQLite and PostgreSQL."""

from __future__ import annotations

import random

from sqlalchemy import Engine

from streamrec.config import ServingSettings
from streamrec.events import InteractionEvent, SourceEvent
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.memory_state import InMemoryStreamState
from streamrec.model.stream import EfficientRecStream
from streamrec.services.stream_state import DatabaseStreamState
from streamrec.services.user_cache import UserCache
from streamrec.storage import UnitOfWork

ITEMS = [f"i{item:02d}" for item in range(40)]
SETTINGS = ServingSettings(neighbours=True, neighbour_history=6)


def events(count: int, seed: int) -> list[AcceptedInteraction]:
    generator = random.Random(seed)
    stream = []
    for position in range(count):
        user, item = f"u{generator.randrange(12)}", generator.choice(ITEMS)
        # Equal times are common (MovieLens has many): the event id orders them.
        timestamp = float(position // 3)
        event = InteractionEvent(f"e{position:05d}", user, item, "like", timestamp)
        source = SourceEvent("interactions", 0, position, timestamp)
        stream.append(AcceptedInteraction(event, generator.choice([1.0, 0.5, -1.0]), source))
    return stream


def learned_by_both_adapters(
    engine: Engine, settings: ServingSettings, stream: list[AcceptedInteraction], batch: int = 50
) -> InMemoryStreamState:
    """``stream`` learned in batches by the stream over the database (stored through
    ``engine``) and over memory; returns the memory's state."""
    in_memory = EfficientRecStream(None, settings, InMemoryStreamState())
    for start in range(0, len(stream), batch):
        events_of_batch = stream[start : start + batch]
        in_memory.learn_many(events_of_batch)
        with UnitOfWork(engine) as uow:
            state = DatabaseStreamState(uow, None, UserCache(100), state_token=1)
            EfficientRecStream(None, settings, state).learn_many(events_of_batch)
            state.finish()
            uow.commit()
    memory_state = in_memory.state
    assert isinstance(memory_state, InMemoryStreamState)
    return memory_state


def test_both_adapters_keep_the_same_neighbours(engine: Engine) -> None:
    memory_state = learned_by_both_adapters(engine, SETTINGS, events(600, seed=7))
    with UnitOfWork(engine) as uow:
        state = DatabaseStreamState(uow, None, UserCache(100), state_token=1)
        for count in (1, 3, 10, 100):
            assert state.item_neighbours(ITEMS, count) == memory_state.item_neighbours(ITEMS, count)
        assert state.item_popularity(ITEMS) == memory_state.item_popularity(ITEMS)
        written = len(state.item_neighbours(ITEMS, 100))
    assert written > 30  # most items have neighbours
    lists = memory_state.item_neighbours(ITEMS, 3).values()
    # The lists were cut inside runs of equal counts: the ties were decided by item id.
    assert any(len(pairs) == 3 and pairs[1][1] == pairs[2][1] for pairs in lists)
