"""A batch's prequential hits are judged against the list last recommended to each user (what
the user saw), and a list the state has forgotten is voted as it stands before the batch, the
item neighbours fused in when they are on."""

from __future__ import annotations

import pytest

from streamrec.config import ServingSettings
from streamrec.events import InteractionEvent, SourceEvent
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.memory_state import InMemoryStreamState
from streamrec.model.stream import EfficientRecStream
from tests.fixtures.small_model import tiny_stream

SETTINGS = ServingSettings(top_memberships=2, recommendations=3)


def event(offset: int, user_id: str, item_id: str) -> AcceptedInteraction:
    interaction = InteractionEvent(f"e{offset}", user_id, item_id, "like", float(offset))
    return AcceptedInteraction(interaction, 1.0, SourceEvent("interactions", 0, offset, offset))


@pytest.fixture(params=[False, True], ids=["vote", "vote and neighbours"])
def stream(request: pytest.FixtureRequest) -> EfficientRecStream:
    stream = tiny_stream(SETTINGS.model_copy(update={"neighbours": request.param}))
    items = [f"i{number}" for number in range(8)]
    stream.learn_many([event(n, f"u{n % 4}", item) for n, item in enumerate(items)])
    return stream


def test_the_lists_of_known_users_are_remembered_as_recommended(
    stream: EfficientRecStream,
) -> None:
    state = stream.state
    assert isinstance(state, InMemoryStreamState)
    learned = stream.learn_many([event(20, "u1", "i0"), event(21, "new", "i1")])
    remembered = state.last_recommendations(["u1", "new"])
    # A new user's list is voted from their first event: their own, and remembered too.
    assert sorted(remembered) == ["new", "u1"]
    for user in learned.recommendations:
        assert list(remembered[user.user_id]) == [item.item_id for item in user.items]


def test_an_event_is_judged_against_the_remembered_list(stream: EfficientRecStream) -> None:
    state = stream.state
    assert isinstance(state, InMemoryStreamState)
    # A list the vote would never give: only the remembered list can make these hits.
    state.remember_recommendations({"u1": ["planted"], "u2": ["i9"]})
    learned = stream.learn_many([event(30, "u1", "planted"), event(31, "u2", "planted")])
    assert learned.hits == [True, False]


def test_a_forgotten_list_is_voted_as_it_stood(stream: EfficientRecStream) -> None:
    state = stream.state
    assert isinstance(state, InMemoryStreamState)
    state.recommended.clear()
    voted = [item.item_id for item in stream.recommend_one("u3")]
    assert voted, "the stream recommends something to u3"
    learned = stream.learn_many([event(40, "u3", voted[0]), event(41, "u3", "unheard-of")])
    assert learned.hits == [True, False]
