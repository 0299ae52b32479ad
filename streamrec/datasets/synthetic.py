"""A synthetic event stream with planted, overlapping user groups and optional taste drift.

Each group prefers a set of items (popular ones more, a Zipf-like law). Each user belongs to one
to three groups with weights and rates items drawn from their groups high (4-5) and a little
noise of random items low (1-3). Optionally, at a point in the stream, every group swaps part of
its preferred items for new ones (drift).

Everything a user does is derived from (seed, user index) alone, so any user can be regenerated
without the others and a stream of millions of users is produced block by block: users are
grouped in blocks of ``users_per_block``, each block's events fall in its own time window and
are emitted in time order, so the whole stream is in time order while memory holds one block.

>>> stream = SyntheticStream(SyntheticConfig(users=3, items=50, groups=4, seed=7))
>>> events = list(stream.events())
>>> events == list(SyntheticStream(SyntheticConfig(users=3, items=50, groups=4, seed=7)).events())
True
>>> all(a.timestamp <= b.timestamp for a, b in zip(events, events[1:]))
True
>>> [len(stream.user_groups(user)) in (1, 2, 3) for user in range(3)]
[True, True, True]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from streamrec.datasets.base import Dataset, InteractionTable, RatingScale
from streamrec.events import InteractionEvent, ItemEvent

SCALE = RatingScale(1.0, 5.0)
# Distinct constants keep the random streams of groups, drift and users independent.
_GROUP_STREAM = 1
_DRIFT_STREAM = 2
_USER_STREAM = 3
# How many candidate draws per wanted event, so that de-duplication rarely falls short.
_OVERSAMPLING = 3


@dataclass(frozen=True)
class SyntheticConfig:
    """The shape of a synthetic stream; the defaults are the small ``synthetic`` dataset."""

    users: int = 2_000
    items: int = 500
    groups: int = 10
    items_per_group: int = 40
    min_events_per_user: int = 20
    max_events_per_user: int = 60
    max_groups_per_user: int = 3
    noise: float = 0.1  # share of events on a uniformly random item, rated low
    popularity_exponent: float = 0.8  # Zipf exponent of item preference inside a group
    drift_at: float | None = None  # fraction of the stream's time span where tastes shift
    drift_share: float = 0.5  # share of each group's items replaced at the drift
    seed: int = 0
    users_per_block: int = 1_000
    seconds_per_block: float = 86_400.0
    start_time: float = 1_600_000_000.0

    def __post_init__(self) -> None:
        problems = []
        if self.users < 1 or self.items < 1 or self.groups < 1:
            problems.append("users, items and groups must be at least 1")
        if not 1 <= self.items_per_group <= self.items:
            problems.append("items_per_group must be between 1 and items")
        if not 1 <= self.min_events_per_user <= self.max_events_per_user:
            problems.append("need 1 <= min_events_per_user <= max_events_per_user")
        if not 1 <= self.max_groups_per_user <= self.groups:
            problems.append("max_groups_per_user must be between 1 and groups")
        if not 0.0 <= self.noise <= 1.0 or not 0.0 <= self.drift_share <= 1.0:
            problems.append("noise and drift_share must be in [0, 1]")
        if self.drift_at is not None and not 0.0 <= self.drift_at <= 1.0:
            problems.append("drift_at must be in [0, 1]")
        if self.users_per_block < 1 or self.seconds_per_block <= 0:
            problems.append("users_per_block and seconds_per_block must be positive")
        if problems:
            raise ValueError("invalid synthetic config: " + "; ".join(problems))


@dataclass(frozen=True)
class UserTrace:
    """One user's generated interactions, in time order."""

    user_index: int
    item_indices: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray


class SyntheticStream:
    """The stream described by a SyntheticConfig, with its planted truth."""

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = config
        group_random = np.random.default_rng((config.seed, _GROUP_STREAM))
        self._group_items = np.stack(
            [
                group_random.choice(config.items, size=config.items_per_group, replace=False)
                for _ in range(config.groups)
            ]
        )
        self._drifted_group_items = self._drift(self._group_items)
        ranks = np.arange(1, config.items_per_group + 1, dtype=np.float64)
        preference = ranks ** (-config.popularity_exponent)
        self._rank_probabilities = preference / preference.sum()

    @property
    def blocks(self) -> int:
        return -(-self.config.users // self.config.users_per_block)

    @property
    def drift_time(self) -> float | None:
        """The timestamp from which groups prefer their drifted items (None: no drift)."""
        if self.config.drift_at is None:
            return None
        span = self.blocks * self.config.seconds_per_block
        return self.config.start_time + self.config.drift_at * span

    def group_items(self, group: int, drifted: bool = False) -> np.ndarray:
        """The item indices group prefers, most preferred first (after the drift if asked)."""
        chosen = self._drifted_group_items if drifted else self._group_items
        return chosen[group].copy()

    def user_groups(self, user_index: int) -> tuple[tuple[int, float], ...]:
        """The planted truth: (group, weight) pairs of a user, heaviest first, weights sum 1."""
        groups, weights = self._memberships(self._user_random(user_index))
        return tuple(
            (int(group), float(weight)) for group, weight in zip(groups, weights, strict=True)
        )

    def user_trace(self, user_index: int) -> UserTrace:
        """Everything user_index does, regenerated from (seed, user index) alone."""
        config = self.config
        random = self._user_random(user_index)
        groups, weights = self._memberships(random)
        wanted = int(random.integers(config.min_events_per_user, config.max_events_per_user + 1))
        draws = wanted * _OVERSAMPLING
        is_noise = random.random(draws) < config.noise
        group_of_draw = random.choice(groups, size=draws, p=weights)
        rank_of_draw = random.choice(config.items_per_group, size=draws, p=self._rank_probabilities)
        noise_items = random.integers(config.items, size=draws)
        block_start = config.start_time + (user_index // config.users_per_block) * (
            config.seconds_per_block
        )
        times = block_start + random.random(draws) * config.seconds_per_block
        drift_time = self.drift_time
        drifted = np.zeros(draws, dtype=bool) if drift_time is None else times >= drift_time
        preferred = np.where(
            drifted,
            self._drifted_group_items[group_of_draw, rank_of_draw],
            self._group_items[group_of_draw, rank_of_draw],
        )
        items = np.where(is_noise, noise_items, preferred)
        ratings = np.where(
            is_noise, random.integers(1, 4, size=draws), random.integers(4, 6, size=draws)
        ).astype(np.float32)
        kept = self._distinct_draws(items, is_noise, wanted)
        kept = kept[np.argsort(times[kept], kind="stable")]
        return UserTrace(user_index, items[kept], ratings[kept], times[kept])

    def _distinct_draws(self, items: np.ndarray, is_noise: np.ndarray, wanted: int) -> np.ndarray:
        """Draws to keep: a user rates an item once, and noise keeps its configured share even
        when the user's groups offer fewer distinct items than wanted (the user then has fewer
        events, never a larger share of noise)."""
        _, first = np.unique(items, return_index=True)
        first = np.sort(first)  # draw order is random, so earlier draws are no bias
        preferred, noisy = first[~is_noise[first]], first[is_noise[first]]
        noise = self.config.noise
        if noise >= 1.0:
            return noisy[:wanted]
        preferred = preferred[: wanted - round(wanted * noise)]
        noise_count = round(preferred.size * noise / (1.0 - noise))
        return np.concatenate([preferred, noisy[:noise_count]])

    def user_events(self, user_index: int) -> list[InteractionEvent]:
        trace = self.user_trace(user_index)
        user_id = user_name(user_index)
        return [
            InteractionEvent(
                event_id=f"synthetic-{self.config.seed}-{user_index}-{position}",
                user_id=user_id,
                item_id=item_name(int(item)),
                type="rating",
                value=float(rating),
                timestamp=float(timestamp),
            )
            for position, (item, rating, timestamp) in enumerate(
                zip(trace.item_indices, trace.ratings, trace.timestamps, strict=True)
            )
        ]

    def events(self) -> Iterator[InteractionEvent]:
        """All events in time order, one block of users in memory at a time."""
        config = self.config
        for block in range(self.blocks):
            first_user = block * config.users_per_block
            last_user = min(config.users, first_user + config.users_per_block)
            block_events = [
                event for user in range(first_user, last_user) for event in self.user_events(user)
            ]
            block_events.sort(key=lambda event: event.timestamp)
            yield from block_events

    def to_dataset(self, max_events: int = 5_000_000) -> Dataset:
        """Materialise the stream; refused when it could exceed max_events (stream instead)."""
        config = self.config
        if config.users * config.max_events_per_user > max_events:
            raise ValueError(
                f"{config.users} users x up to {config.max_events_per_user} events may exceed "
                f"{max_events} events: iterate events() instead of materialising"
            )
        rows: list[tuple[str, str, float, float, float | None]] = []
        for user in range(config.users):
            trace = self.user_trace(user)
            weights = SCALE.weights(trace.ratings)
            rows.extend(
                (user_name(user), item_name(int(item)), float(weight), float(time), float(rating))
                for item, weight, time, rating in zip(
                    trace.item_indices, weights, trace.timestamps, trace.ratings, strict=True
                )
            )
        items = {
            item_name(item): ItemEvent(item_id=item_name(item), timestamp=0.0, title=f"Item {item}")
            for item in range(config.items)
        }
        return Dataset(
            name="synthetic",
            table=InteractionTable.from_rows(rows),
            items=items,
            event_type="rating",
            rating_scale=SCALE,
        )

    def _user_random(self, user_index: int) -> np.random.Generator:
        if not 0 <= user_index < self.config.users:
            raise IndexError(f"user index {user_index} outside 0..{self.config.users - 1}")
        return np.random.default_rng((self.config.seed, _USER_STREAM, user_index))

    def _memberships(self, random: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The first draws of a user's random stream: their groups and weights."""
        count = int(random.integers(1, self.config.max_groups_per_user + 1))
        groups = random.choice(self.config.groups, size=count, replace=False)
        weights = random.dirichlet(np.full(count, 2.0))
        order = np.argsort(-weights)
        return groups[order], weights[order]

    def _drift(self, group_items: np.ndarray) -> np.ndarray:
        drifted = group_items.copy()
        replaced = min(
            round(self.config.drift_share * self.config.items_per_group),
            self.config.items - self.config.items_per_group,
        )
        if self.config.drift_at is None or replaced == 0:
            return drifted
        random = np.random.default_rng((self.config.seed, _DRIFT_STREAM))
        for group in range(self.config.groups):
            positions = random.choice(self.config.items_per_group, size=replaced, replace=False)
            current = set(drifted[group].tolist())
            fresh = [item for item in random.permutation(self.config.items) if item not in current]
            drifted[group, positions] = fresh[:replaced]
        return drifted


def user_name(user_index: int) -> str:
    return f"u{user_index}"


def item_name(item_index: int) -> str:
    return f"i{item_index}"


def user_index_of(user_id: str) -> int:
    """The index behind a synthetic user id (for looking up the planted truth)."""
    return int(user_id.removeprefix("u"))
