"""Streaming baselines for the prequential evaluation, learning one event at a time.

- ``StreamingPopularity``: the most interacted-with items so far, optionally with a half-life
  (counted in events) so that the ranking follows what is popular now;
- ``RiverRanker``: a river ``reco`` model (``BiasedMF``, ``FunkMF``) learning the preference
  weight of each (user, item) pair. river's models score pairs, not the catalogue, so each
  recommendation ranks a candidate set: the ``candidates`` most popular items the user has
  not interacted with yet (default 100). The model can only recommend from that set.

``replay_baselines`` runs them prequentially on an event stream: for each event, first ask
each baseline for the user's top-N (items the user already has are never recommended, as in
streamrec), score a hit if the event's item is among them, then let it learn the event.

>>> events = [("u1", "a", 1.0), ("u2", "a", 1.0), ("u3", "a", 1.0), ("u3", "b", 0.5)]
>>> boards = replay_baselines(events, [StreamingPopularity()], count=1, window=10)
>>> boards["popularity"].hit_rate
0.5
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from streamrec.evaluation.prequential import HitRateBoard

# Forward decay multiplies new increments instead of decaying old counts; rescale everything
# before the increment overflows a double.
_RESCALE_ABOVE = 1e150
DEFAULT_CANDIDATES = 100

StreamEvent = tuple[str, str, float]  # (user_id, item_id, weight)


class StreamingRecommender(Protocol):
    name: str

    def recommend(self, user_id: str, count: int, seen: set[str]) -> list[str]:
        """The user's top ``count`` items, best first, none of them in ``seen``."""

    def learn(self, user_id: str, item_id: str, weight: float) -> None:
        """Learn one event."""


class ItemCounts:
    """Per-item (optionally decayed) counts in a growing numpy array, with top-k queries.

    >>> counts = ItemCounts()
    >>> for item in ["a", "b", "b", "c", "b", "c"]: counts.add(item)
    >>> counts.top(2, exclude={"c"})
    ['b', 'a']
    """

    def __init__(self, half_life_events: float | None = None) -> None:
        if half_life_events is not None and half_life_events <= 0:
            raise ValueError(f"half_life_events must be positive, got {half_life_events}")
        self._growth = 1.0 if half_life_events is None else 2.0 ** (1.0 / half_life_events)
        self._increment = 1.0
        self._scores = np.zeros(1024, dtype=np.float64)
        self._item_ids: list[str] = []
        self._columns: dict[str, int] = {}

    def add(self, item_id: str) -> None:
        column = self._columns.get(item_id)
        if column is None:
            column = self._columns[item_id] = len(self._item_ids)
            self._item_ids.append(item_id)
            if column == self._scores.size:
                self._scores = np.concatenate([self._scores, np.zeros_like(self._scores)])
        self._scores[column] += self._increment
        self._increment *= self._growth
        if self._increment > _RESCALE_ABOVE:
            self._scores /= self._increment
            self._increment = 1.0

    def top(self, count: int, exclude: set[str]) -> list[str]:
        known = len(self._item_ids)
        if known == 0 or count <= 0:
            return []
        scores = self._scores[:known].copy()
        excluded = [self._columns[item] for item in exclude if item in self._columns]
        scores[excluded] = -np.inf
        wanted = min(count, known)
        best = np.argpartition(-scores, wanted - 1)[:wanted]
        # Ties go to the item seen first, so runs are reproducible.
        ranked = best[np.lexsort((best, -scores[best]))]
        return [self._item_ids[column] for column in ranked if scores[column] > -np.inf]


class StreamingPopularity:
    """Recommends the most popular items so far (decayed if ``half_life_events`` is set)."""

    def __init__(self, half_life_events: float | None = None) -> None:
        self.name = "popularity" if half_life_events is None else "popularity, decayed"
        self._counts = ItemCounts(half_life_events)

    def recommend(self, user_id: str, count: int, seen: set[str]) -> list[str]:
        return self._counts.top(count, seen)

    def learn(self, user_id: str, item_id: str, weight: float) -> None:
        self._counts.add(item_id)


class RiverRanker:
    """A river ``reco`` model ranking the most popular unseen items (see the module text).

    Scores are computed in one matrix product from the model's latent tables instead of one
    ``predict_one`` per candidate; terms that are equal for every candidate (global mean,
    user bias) are left out, since they do not change the ranking.
    """

    def __init__(
        self,
        name: str,
        model: Any,
        candidates: int = DEFAULT_CANDIDATES,
    ) -> None:
        self.name = name
        self.model = model
        self.candidates = candidates
        self._popularity = ItemCounts()

    def recommend(self, user_id: str, count: int, seen: set[str]) -> list[str]:
        candidates = self._popularity.top(self.candidates, seen)
        if not candidates:
            return []
        scores = self.scores(user_id, candidates)
        order = np.argsort(-scores, kind="stable")[:count]
        return [candidates[index] for index in order]

    def scores(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """The model's preference for each item, up to a constant per user."""
        model = self.model
        item_latents = np.stack([model.i_latents[item_id] for item_id in item_ids])
        scores = item_latents @ model.u_latents[user_id]
        item_biases = getattr(model, "i_biases", None)
        if item_biases is not None:
            scores = scores + np.array([item_biases[item_id] for item_id in item_ids])
        return np.asarray(scores, dtype=np.float64)

    def learn(self, user_id: str, item_id: str, weight: float) -> None:
        self._popularity.add(item_id)
        self.model.learn_one(user_id, item_id, weight)


def river_baselines(seed: int = 0, candidates: int = DEFAULT_CANDIDATES) -> list[RiverRanker]:
    """BiasedMF and FunkMF with the settings of river's own MovieLens example (10 factors,
    SGD, small random latents), ranking the ``candidates`` most popular unseen items."""
    from river import optim, reco

    def latents() -> Any:
        return optim.initializers.Normal(mu=0.0, sigma=0.1, seed=seed)

    biased = reco.BiasedMF(
        n_factors=10,
        bias_optimizer=optim.SGD(0.025),
        latent_optimizer=optim.SGD(0.05),
        latent_initializer=latents(),
        l2_bias=0.0,
        l2_latent=0.0,
        seed=seed,
    )
    funk = reco.FunkMF(
        n_factors=10, optimizer=optim.SGD(0.05), initializer=latents(), l2=0.0, seed=seed
    )
    return [
        RiverRanker("river BiasedMF", biased, candidates),
        RiverRanker("river FunkMF", funk, candidates),
    ]


def replay_baselines(
    events: Iterable[StreamEvent],
    recommenders: Sequence[StreamingRecommender],
    *,
    count: int,
    window: int = 1_000,
    score_from: int = 0,
    on_event: Callable[[int], None] | None = None,
) -> dict[str, HitRateBoard]:
    """Test-then-train every recommender on ``events`` (in order); their boards by name.
    Events before position ``score_from`` are learned without being scored (a warm-up)."""
    boards = {
        recommender.name: HitRateBoard(recommender.name, window) for recommender in recommenders
    }
    seen: dict[str, set[str]] = defaultdict(set)
    event_counts: dict[str, int] = defaultdict(int)
    for position, (user_id, item_id, weight) in enumerate(events):
        user_seen = seen[user_id]
        events_before = event_counts[user_id]
        event_counts[user_id] += 1
        if position >= score_from:
            for recommender in recommenders:
                hit = item_id in recommender.recommend(user_id, count, user_seen)
                boards[recommender.name].record(position, hit, events_before)
        for recommender in recommenders:
            recommender.learn(user_id, item_id, weight)
        user_seen.add(item_id)
        if on_event is not None:
            on_event(position)
    return boards
