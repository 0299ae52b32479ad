"""The idempotence and ordering rule for interactions, and its independence from batching."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.events import InteractionEvent, SourceEvent
from streamrec.model.interaction_rule import AcceptedInteraction, resolve_interactions
from streamrec.state import Interaction


def accepted(event_id: str, timestamp: float, weight: float, user: str = "u1", item: str = "i1"):
    event = InteractionEvent(event_id, user, item, "click", timestamp)
    return AcceptedInteraction(event, weight, SourceEvent("interactions", 0, 0, timestamp))


def stored(event_id: str, timestamp: float, weight: float) -> dict:
    return {("u1", "i1"): Interaction("u1", "i1", weight, event_id, "click", timestamp)}


def test_a_repeated_event_changes_nothing() -> None:
    resolution = resolve_interactions([accepted("e1", 10.0, 0.5)], stored("e1", 10.0, 0.5))
    assert resolution.rows_to_store == []
    assert resolution.changes == []
    assert (resolution.applied, resolution.ignored) == (0, 1)


def test_an_older_event_does_not_overwrite_a_newer_weight() -> None:
    resolution = resolve_interactions([accepted("e0", 5.0, -1.0)], stored("e1", 10.0, 0.5))
    assert resolution.rows_to_store == []
    assert resolution.ignored == 1


def test_a_later_event_replaces_the_weight_and_reports_the_change() -> None:
    resolution = resolve_interactions([accepted("e2", 20.0, -0.5)], stored("e1", 10.0, 0.5))
    [row] = resolution.rows_to_store
    assert (row.event_id, row.weight) == ("e2", -0.5)
    [change] = resolution.changes
    assert (change.old_weight, change.new_weight) == (0.5, -0.5)


def test_equal_timestamps_are_ordered_by_event_id() -> None:
    first = resolve_interactions([accepted("b", 10.0, 1.0), accepted("a", 10.0, -1.0)], {})
    second = resolve_interactions([accepted("a", 10.0, -1.0), accepted("b", 10.0, 1.0)], {})
    assert [row.event_id for row in first.rows_to_store] == ["b"]
    assert [row.event_id for row in second.rows_to_store] == ["b"]


def test_a_new_interaction_has_no_old_weight() -> None:
    [change] = resolve_interactions([accepted("e1", 1.0, 0.0)], {}).changes
    assert change.old_weight is None
    assert change.new_weight == 0.0


def test_a_new_event_with_the_same_weight_is_stored_without_a_weight_change() -> None:
    resolution = resolve_interactions([accepted("e2", 20.0, 0.5)], stored("e1", 10.0, 0.5))
    assert [row.event_id for row in resolution.rows_to_store] == ["e2"]
    assert resolution.changes == []


event_lists = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2"]),
        st.sampled_from(["i1", "i2", "i3"]),
        st.integers(0, 5),  # few timestamps: ties are common
        st.integers(0, 6),  # few event ids: duplicates are common
        st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(events=event_lists, cuts=st.lists(st.integers(0, 40), max_size=5))
def test_the_final_rows_do_not_depend_on_how_the_stream_is_cut_into_batches(
    events: list, cuts: list[int]
) -> None:
    # An event id names one event: a duplicate repeats the same payload.
    payload = {}
    stream = []
    for user, item, timestamp, number, weight in events:
        event_id = f"e{number}"
        user, item, timestamp, weight = payload.setdefault(
            event_id, (user, item, float(timestamp), weight)
        )
        stream.append(accepted(event_id, timestamp, weight, user, item))

    def run(batches: list[list[AcceptedInteraction]]) -> dict:
        rows: dict = {}
        for batch in batches:
            for row in resolve_interactions(batch, rows).rows_to_store:
                rows[(row.user_id, row.item_id)] = row
        return rows

    boundaries = sorted({0, len(stream), *(cut for cut in cuts if cut <= len(stream))})
    batches = [stream[a:b] for a, b in itertools.pairwise(boundaries)]
    one_batch = run([stream])
    assert run(batches) == one_batch
    # Replaying the whole stream again changes nothing.
    assert run([stream, stream]) == one_batch
    # Each pair ends with its greatest (timestamp, event_id).
    for (user, item), row in one_batch.items():
        same_pair = [a.event for a in stream if (a.event.user_id, a.event.item_id) == (user, item)]
        latest = max(same_pair, key=lambda event: (event.timestamp, event.event_id))
        assert row.event_id == latest.event_id
