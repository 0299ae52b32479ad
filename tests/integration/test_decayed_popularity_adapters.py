"""The decayed popularity kept by the database adapter is the in-memory adapter's: the
same events, learned by ``EfficientRecStream`` in the same batches over either state, give
the same scores and the same most popular items (ties by item id included), on SQLite and
PostgreSQL; and two consumers adding their batches in either order store the same."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from streamrec.config import ServingSettings
from streamrec.model.decayed_popularity import PopularityIncrements, popularity_increments
from streamrec.services.stream_state import DatabaseStreamState
from streamrec.services.user_cache import UserCache
from streamrec.state import Interaction
from streamrec.storage import UnitOfWork
from tests.integration.test_item_neighbours_adapters import (
    ITEMS,
    events,
    learned_by_both_adapters,
)

SETTINGS = ServingSettings(popularity_fallback=True, popularity_half_life_hours=0.01)


def test_both_adapters_keep_the_same_popularity(engine: Engine) -> None:
    memory_state = learned_by_both_adapters(engine, SETTINGS, events(600, seed=3))
    with UnitOfWork(engine) as uow:
        state = DatabaseStreamState(uow, None, UserCache(100), state_token=1)
        stored = state.most_popular_items(len(ITEMS))
    expected = memory_state.most_popular_items(len(ITEMS))
    assert [item for item, _ in stored] == [item for item, _ in expected]
    assert [score for _, score in stored] == pytest.approx(
        [score for _, score in expected], rel=0, abs=1e-9
    )
    assert len(stored) > 30  # most items were taken


def test_concurrent_batches_commute_in_the_database(engine: Engine) -> None:
    def increments(prefix: str, user: str, times: list[float]) -> PopularityIncrements:
        rows = [
            Interaction(user, f"{prefix}{n % 3}", 1.0, f"{user}{n}", "like", time)
            for n, time in enumerate(times)
        ]
        return popularity_increments(rows, 36.0)

    # Two consumers' batches, committed in one order for items "x", the other for "y".
    for prefix, order in (("x", ("a", "b")), ("y", ("b", "a"))):
        for user in order:
            times = [0.0, 50.0, 90.0, 400.0] if user == "a" else [10.0, 70.0, 300.0]
            with UnitOfWork(engine) as uow:
                batch = increments(prefix, user, times)
                uow.popularity.add(batch.item_ids, batch.log_scores)
                uow.commit()
    with UnitOfWork(engine) as uow:
        scores = dict(uow.popularity.most_popular(10))
    for n in range(3):
        assert scores[f"x{n}"] == pytest.approx(scores[f"y{n}"], rel=0, abs=1e-12)
