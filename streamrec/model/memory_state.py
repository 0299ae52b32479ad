"""A stream's state in dictionaries: for evaluation, tests and an in-process stream.

``InMemoryStreamState`` implements ``streamrec.model.stream.StreamState`` for one model
version. It keeps what the database adapter keeps, in the same shape (the statistics are
float64 sums added in the same order), so a stream learned here and one learned through the
consumer end in the same state and vote the same lists.

>>> from streamrec.state import Interaction
>>> state = InMemoryStreamState()
>>> state.store_interactions([Interaction("u1", "i1", 1.0, "e1", "like", 5.0)])
>>> interactions, profiles = state.interactions_and_profiles(["u1", "u2"])
>>> [row.item_id for row in interactions["u1"]], profiles
(['i1'], {})
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from streamrec.events import ItemEvent
from streamrec.model.contributions import ClusterDeltaColumns
from streamrec.model.cooccurrence_counts import CooccurrenceCounts
from streamrec.model.decayed_popularity import PopularityIncrements
from streamrec.model.item_neighbours import CooccurrenceIncrements
from streamrec.model.popularity_scores import PopularityScores
from streamrec.model.user_attributes import EventKey
from streamrec.state import ClusterItemStatistics, Interaction, UserProfile


class InMemoryStreamState:
    """Users, statistics and shortlists of one model version, in memory."""

    def __init__(self, items: Mapping[str, ItemEvent] | None = None) -> None:
        self.items: dict[str, ItemEvent] = dict(items or {})
        self.cooccurrences = CooccurrenceCounts()
        self.popularity = PopularityScores()
        self.interactions: dict[str, dict[str, Interaction]] = {}
        self.profiles: dict[str, UserProfile] = {}
        self.attributes: dict[str, dict[str, str]] = {}
        self.attribute_keys: dict[str, dict[str, EventKey]] = {}
        # cluster -> item -> [liked mass, rated mass, weighted sum]
        self.statistics: dict[int, dict[str, list[float]]] = {}
        self.masses: dict[int, float] = {}
        # The rated masses again, as arrays: a shortlist refresh finds the top items of a
        # cluster of thousands without sorting them all (it runs after every event of an
        # in-process stream).
        self._rated: dict[int, RatedMasses] = {}
        # The rows most_rated_items returned, until their item's totals move again: a
        # refresh rebuilds only the rows an event changed, not all L of each cluster.
        self._rows: dict[int, dict[str, ClusterItemStatistics]] = {}
        self.shortlist_by_cluster: dict[int, list[tuple[str, float]]] = {}
        self.recommended: dict[str, Collection[str]] = {}

    # Users --------------------------------------------------------------------------------

    def interactions_and_profiles(
        self, user_ids: Collection[str]
    ) -> tuple[dict[str, list[Interaction]], dict[str, UserProfile]]:
        interactions = {
            user_id: list(self.interactions[user_id].values())
            for user_id in user_ids
            if user_id in self.interactions
        }
        profiles = {
            user_id: self.profiles[user_id] for user_id in user_ids if user_id in self.profiles
        }
        return interactions, profiles

    def demographics(self, user_ids: Collection[str]) -> dict[str, dict[str, str]]:
        return {
            user_id: dict(self.attributes[user_id])
            for user_id in user_ids
            if user_id in self.attributes
        }

    def demographic_event_keys(self, user_ids: Collection[str]) -> dict[str, dict[str, EventKey]]:
        return {
            user_id: dict(self.attribute_keys[user_id])
            for user_id in user_ids
            if user_id in self.attribute_keys
        }

    def store_demographics(
        self, attributes: Mapping[str, dict[str, str]], keys: Mapping[str, dict[str, EventKey]]
    ) -> None:
        for user_id, values in attributes.items():
            self.attributes[user_id] = dict(values)
            self.attribute_keys[user_id] = dict(keys.get(user_id, {}))

    def store_interactions(self, rows: Sequence[Interaction]) -> None:
        for row in rows:
            self.interactions.setdefault(row.user_id, {})[row.item_id] = row

    def store_profiles(self, profiles: Sequence[UserProfile]) -> None:
        for profile in profiles:
            self.profiles[profile.user_id] = profile
            self.attributes[profile.user_id] = dict(profile.attributes)

    # Clusters -----------------------------------------------------------------------------

    def add_statistics(self, deltas: ClusterDeltaColumns) -> None:
        for cluster, item_id, liked, rated, weighted in zip(
            deltas.clusters.tolist(),
            deltas.item_ids,
            deltas.liked.tolist(),
            deltas.rated.tolist(),
            deltas.weighted.tolist(),
            strict=True,
        ):
            totals = self.statistics.setdefault(cluster, {}).setdefault(item_id, [0.0, 0.0, 0.0])
            totals[0] += liked
            totals[1] += rated
            totals[2] += weighted
            rated_masses = self._rated.get(cluster)
            if rated_masses is None:
                rated_masses = self._rated[cluster] = RatedMasses()
            rated_masses.set(item_id, totals[1])
            rows = self._rows.get(cluster)
            if rows:
                rows.pop(item_id, None)
        for cluster, change in zip(
            deltas.mass_clusters.tolist(), deltas.mass_changes.tolist(), strict=True
        ):
            self.masses[cluster] = self.masses.get(cluster, 0.0) + change

    def cluster_masses(self) -> dict[int, float]:
        return dict(self.masses)

    def most_rated_items(
        self, clusters: Collection[int], count: int
    ) -> dict[int, list[ClusterItemStatistics]]:
        """Each cluster's ``count`` items of largest rated mass, ties by item id (the
        database's order)."""
        top = {}
        for cluster in clusters:
            items = self.statistics.get(cluster)
            if not items:
                continue
            rows = self._rows.setdefault(cluster, {})
            chosen = []
            for item_id in self._rated[cluster].most_rated(count):
                row = rows.get(item_id)
                if row is None:
                    row = rows[item_id] = ClusterItemStatistics(item_id, *items[item_id])
                chosen.append(row)
            top[cluster] = chosen
        return top

    def store_shortlists(self, shortlists: Mapping[int, list[tuple[str, float]]]) -> None:
        self.shortlist_by_cluster.update(
            {cluster: list(items) for cluster, items in shortlists.items()}
        )

    def shortlists(self, clusters: Collection[int]) -> dict[int, list[tuple[str, float]]]:
        return {
            cluster: self.shortlist_by_cluster[cluster]
            for cluster in clusters
            if cluster in self.shortlist_by_cluster
        }

    # Item neighbours ----------------------------------------------------------------------

    def add_cooccurrences(self, increments: CooccurrenceIncrements) -> None:
        self.cooccurrences.add(increments)

    def item_neighbours(
        self, item_ids: Collection[str], count: int
    ) -> dict[str, list[tuple[str, float]]]:
        return self.cooccurrences.neighbours(item_ids, count)

    def item_popularity(self, item_ids: Collection[str]) -> dict[str, float]:
        return self.cooccurrences.popularity(item_ids)

    # Decayed popularity -------------------------------------------------------------------

    def add_popularity(self, increments: PopularityIncrements) -> None:
        self.popularity.add(increments)

    def most_popular_items(self, count: int) -> list[tuple[str, float]]:
        return self.popularity.most_popular(count)

    # Items --------------------------------------------------------------------------------

    def item_features(self, item_ids: Sequence[str]) -> Mapping[str, ItemEvent]:
        return {item_id: self.items[item_id] for item_id in item_ids if item_id in self.items}

    def last_recommendations(self, user_ids: Collection[str]) -> dict[str, Collection[str]]:
        remembered = self.recommended
        return {user_id: remembered[user_id] for user_id in user_ids if user_id in remembered}

    def remember_recommendations(self, lists: Mapping[str, Collection[str]]) -> None:
        self.recommended.update(lists)


class RatedMasses:
    """One cluster's rated mass per item in a growing array, for top-k queries.

    >>> masses = RatedMasses()
    >>> for item_id, mass in [("b", 2.0), ("a", 1.0), ("c", 2.0), ("d", 0.5)]:
    ...     masses.set(item_id, mass)
    >>> masses.most_rated(3)  # ties by item id, as the database orders them
    ['b', 'c', 'a']
    """

    __slots__ = ("_columns", "_item_ids", "_values")

    def __init__(self) -> None:
        self._columns: dict[str, int] = {}
        self._item_ids: list[str] = []
        self._values = np.zeros(64, dtype=np.float64)

    def set(self, item_id: str, mass: float) -> None:
        column = self._columns.get(item_id)
        if column is None:
            column = self._columns[item_id] = len(self._item_ids)
            self._item_ids.append(item_id)
            if column == self._values.size:
                self._values = np.concatenate([self._values, np.zeros_like(self._values)])
        self._values[column] = mass

    def most_rated(self, count: int) -> list[str]:
        """The ``count`` items of largest mass, largest first, ties by item id."""
        size = len(self._item_ids)
        if count <= 0 or size == 0:
            return []
        values = self._values[:size]
        if size > count:
            # Every item at or above the count-th largest mass: ties at the boundary are
            # all kept, so the id order below decides them exactly as a full sort would.
            threshold = np.partition(values, size - count)[size - count]
            columns = np.flatnonzero(values >= threshold).tolist()
        else:
            columns = list(range(size))
        ranked = sorted(
            zip(
                (-values[columns]).tolist(),
                [self._item_ids[column] for column in columns],
                strict=True,
            )
        )
        return [item_id for _, item_id in ranked[:count]]
