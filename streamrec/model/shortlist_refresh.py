"""When a consumer recomputes the shortlists its batches changed.

Recomputing a cluster's shortlist reads its top items from the statistics and writes the
new list back: a fixed cost of every batch, since a batch of any size touches most clusters
(each event adds to M of them). With small batches (low latency) it was the largest part of
a batch (docs/performance.md). The schedule lets a consumer refresh the clusters changed
since the last refresh at most once per ``interval`` seconds; the statistics themselves are
updated in every batch, so a shortlist is never more than the interval (plus one batch)
behind them. An interval of 0 refreshes every batch.

The schedule lives in the consumer's memory. A crash loses the record of clusters changed
but not yet refreshed, so the first batch of each model version in a process refreshes
every cluster that has statistics.

>>> ticks = iter([0.0, 0.4, 1.2])
>>> schedule = ShortlistRefreshSchedule(interval_seconds=1.0, clock=lambda: next(ticks))
>>> plan = schedule.plan(7, changed={1, 2}, all_clusters=lambda: [0, 1, 2, 3])
>>> sorted(plan.refresh)  # first batch of version 7 here: everything
[0, 1, 2, 3]
>>> schedule.record(plan)  # after the batch committed
>>> plan = schedule.plan(7, changed={2, 3}, all_clusters=lambda: [])
>>> sorted(plan.refresh)  # 0.4 s later: not yet
[]
>>> schedule.record(plan)
>>> sorted(schedule.plan(7, changed={0}, all_clusters=lambda: []).refresh)  # 1.2 s: all due
[0, 2, 3]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """One batch's part: the clusters its deltas changed and those it refreshes."""

    version: int
    changed: frozenset[int]
    refresh: frozenset[int]
    planned_at: float


class ShortlistRefreshSchedule:
    """Which clusters' shortlists each batch refreshes (see the module doc)."""

    def __init__(
        self, interval_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._pending: dict[int, set[int]] = {}
        self._last_refresh: dict[int, float] = {}

    def plan(
        self, version: int, changed: Collection[int], all_clusters: Callable[[], Iterable[int]]
    ) -> RefreshPlan:
        """What the batch in hand refreshes, given the clusters its deltas ``changed``;
        ``all_clusters`` lists the version's clusters (called on its first batch only)."""
        now = self._clock()
        changed = frozenset(changed)
        if version not in self._last_refresh:
            refresh = changed | frozenset(all_clusters())
        elif now - self._last_refresh[version] >= self._interval:
            refresh = changed | self._pending.get(version, set())
        else:
            refresh = frozenset()
        return RefreshPlan(version, changed, frozenset(refresh), now)

    def record(self, plan: RefreshPlan) -> None:
        """Note a committed batch's plan (a batch that rolled back is not recorded: its
        retry plans again)."""
        pending = self._pending.setdefault(plan.version, set())
        pending.update(plan.changed)
        pending.difference_update(plan.refresh)
        if plan.refresh or plan.version not in self._last_refresh:
            self._last_refresh[plan.version] = plan.planned_at
