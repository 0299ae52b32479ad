"""A served state with the optional candidate sources on: the item neighbours and the
decayed popularity, their counts and scores those the stored interactions add when learned
with both on. The API tests and the dashboard's browser tests of explained sources share it.
"""

from __future__ import annotations

from streamrec.model.decayed_popularity import SECONDS_PER_HOUR, popularity_increments
from streamrec.model.item_neighbours import cooccurrence_increments
from streamrec.storage import create_database_engine
from streamrec.storage.unit_of_work import UnitOfWork
from tests.integration.api_support import ServedState

NEIGHBOUR_HISTORY = 5
# The neighbours at 0.7 (the vote at 0.3) and the popularity at 0.3.
SOURCES_ON = {
    "neighbours": True,
    "neighbour_history": NEIGHBOUR_HISTORY,
    "neighbour_weight": 0.7,
    "popularity_weight": 0.3,
}


def with_sources_on(state: ServedState) -> ServedState:
    """``state`` with the co-occurrence counts and the decayed popularity of its stored
    interactions, and settings that serve both (``SOURCES_ON``). Settings without them
    read neither, so the state serves those as before."""
    serving = state.settings.serving.model_copy(update=SOURCES_ON)
    settings = state.settings.model_copy(update={"serving": serving})
    engine = create_database_engine(state.url)
    try:
        with UnitOfWork(engine) as uow:
            stored = uow.interactions.for_users(state.users)
            rows = [row for user_rows in stored.values() for row in user_rows]
            counts = cooccurrence_increments({}, rows, NEIGHBOUR_HISTORY)
            uow.cooccurrences.add(counts.item_ids, counts.other_item_ids, counts.counts)
            half_life = serving.popularity_half_life_hours * SECONDS_PER_HOUR
            popularity = popularity_increments(rows, half_life)
            uow.popularity.add(popularity.item_ids, popularity.log_scores)
            uow.commit()
    finally:
        engine.dispose()
    return ServedState(state.url, settings, state.versions, state.users, state.items)
