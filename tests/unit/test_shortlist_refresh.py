"""The shortlist refresh schedule: nothing changed is ever left unrefreshed for long."""

from __future__ import annotations

from streamrec.model.shortlist_refresh import ShortlistRefreshSchedule


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_interval_of_zero_refreshes_what_every_batch_changed() -> None:
    schedule = ShortlistRefreshSchedule(0.0, clock=ManualClock())
    schedule.record(schedule.plan(1, {0}, all_clusters=lambda: [0]))
    for changed in ({1, 2}, {3}, set()):
        plan = schedule.plan(1, changed, all_clusters=lambda: [])
        assert plan.refresh == changed
        schedule.record(plan)


def test_clusters_changed_between_refreshes_are_all_refreshed_when_due() -> None:
    clock = ManualClock()
    schedule = ShortlistRefreshSchedule(1.0, clock=clock)
    schedule.record(schedule.plan(1, {0}, all_clusters=lambda: [0, 1]))
    for changed in ({1}, {2}, {3}):
        clock.now += 0.3
        plan = schedule.plan(1, changed, all_clusters=lambda: [])
        assert plan.refresh == frozenset()
        schedule.record(plan)
    clock.now += 0.2
    assert schedule.plan(1, {4}, all_clusters=lambda: []).refresh == {1, 2, 3, 4}


def test_a_batch_that_rolled_back_leaves_its_clusters_pending() -> None:
    clock = ManualClock()
    schedule = ShortlistRefreshSchedule(1.0, clock=clock)
    schedule.record(schedule.plan(1, {0}, all_clusters=lambda: [0]))
    clock.now += 2.0
    schedule.plan(1, {5}, all_clusters=lambda: [])  # planned, then the transaction failed
    clock.now += 0.1
    # Still due: the failed refresh did not count, and its retry carries the same deltas.
    assert schedule.plan(1, {5}, all_clusters=lambda: []).refresh == {5}


def test_each_model_version_starts_with_a_full_refresh() -> None:
    clock = ManualClock()
    schedule = ShortlistRefreshSchedule(60.0, clock=clock)
    schedule.record(schedule.plan(1, {0}, all_clusters=lambda: [0, 1]))
    plan = schedule.plan(2, {0}, all_clusters=lambda: [0, 1, 2])
    assert plan.refresh == {0, 1, 2}
    assert schedule.plan(1, {1}, all_clusters=lambda: [9]).refresh == frozenset()
