"""The stream's state in the database: ``StreamState`` over one batch's unit of work.

``DatabaseStreamState`` is the adapter the consumer gives ``streamrec.model.stream``: every
call is a repository call inside the batch's transaction, under the active model version.
Three things make it fast without changing what it stores:

- users the consumer wrote in an earlier batch come from its memory while their stored state
  token is still the one it wrote (``streamrec.services.user_cache``);
- writes that nothing reads back (interactions, user states, and writes the service queues,
  such as the batch's event ids) go to PostgreSQL without waiting, in pipeline mode, and are
  waited for at the adapter's next call, so the database runs them while the model computes
  (``UnitOfWork.overlapped_writes``);
- it remembers which users have a row, so a state's write does not write the row again.

>>> from streamrec.services.user_cache import UserCache
>>> from streamrec.state import Interaction
>>> from streamrec.storage.memory import create_memory_database
>>> from streamrec.storage.unit_of_work import UnitOfWork
>>> with UnitOfWork(create_memory_database()) as uow:
...     state = DatabaseStreamState(uow, None, UserCache(10), state_token=1)
...     state.store_interactions([Interaction("u1", "i1", 1.0, "e1", "like", 5.0)])
...     interactions, profiles = state.interactions_and_profiles(["u1"])
...     state.finish()
>>> [row.item_id for row in interactions["u1"]], profiles
(['i1'], {})
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import ExitStack

from streamrec.events import ItemEvent
from streamrec.model.contributions import ClusterDeltaColumns
from streamrec.model.decayed_popularity import PopularityIncrements
from streamrec.model.item_neighbours import CooccurrenceIncrements
from streamrec.model.user_attributes import EventKey
from streamrec.services.user_cache import UserCache
from streamrec.state import ClusterItemStatistics, Interaction, UserProfile
from streamrec.storage.unit_of_work import UnitOfWork


class DatabaseStreamState:
    """``StreamState`` of ``version`` (None: no active version; no profiles or clusters)
    inside ``uow``'s transaction. States are written with ``state_token``. Call ``finish``
    before the transaction commits."""

    def __init__(
        self,
        uow: UnitOfWork,
        version: int | None,
        known_users: UserCache,
        *,
        state_token: int,
    ) -> None:
        self._uow = uow
        self._version = version
        self._known_users = known_users
        self._state_token = state_token
        self._users_with_rows: set[str] = set()
        self._in_flight: ExitStack | None = None
        self._queued: list[Callable[[], object]] = []

    @property
    def version(self) -> int | None:
        return self._version

    def queue_write(self, write: Callable[[], object]) -> None:
        """Run ``write`` (a statement whose result nothing reads) with the next writes sent
        without waiting, or at ``finish``."""
        self._queued.append(write)

    def finish(self) -> None:
        """Send what is queued and wait for every write in flight."""
        if self._queued:
            self._send_without_waiting()
        self._wait()

    # Users --------------------------------------------------------------------------------

    def interactions_and_profiles(
        self, user_ids: Collection[str]
    ) -> tuple[dict[str, list[Interaction]], dict[str, UserProfile]]:
        self._wait()
        uow, version = self._uow, self._version
        known = (
            {}
            if version is None
            else self._known_users.current(
                user_ids, version, lambda ids: uow.users.state_tokens(ids, version)
            )
        )
        unknown = [user_id for user_id in user_ids if user_id not in known]
        interactions = {user_id: list(user.interactions) for user_id, user in known.items()}
        interactions.update(uow.interactions.for_users(unknown))
        if version is None:
            return interactions, {}
        profiles = {user_id: user.state for user_id, user in known.items()}
        profiles.update(uow.users.get_many(unknown, version))
        self._users_with_rows.update(profiles)
        return interactions, profiles

    def demographics(self, user_ids: Collection[str]) -> dict[str, dict[str, str]]:
        self._wait()
        found = self._uow.users.attributes_many(user_ids)
        self._users_with_rows.update(found)
        return found

    def demographic_event_keys(self, user_ids: Collection[str]) -> dict[str, dict[str, EventKey]]:
        self._wait()
        return self._uow.users.attribute_event_keys_many(user_ids)

    def store_demographics(
        self, attributes: Mapping[str, dict[str, str]], keys: Mapping[str, dict[str, EventKey]]
    ) -> None:
        self._wait()
        self._uow.users.save_attributes(attributes, keys)
        self._users_with_rows.update(attributes)

    def store_interactions(self, rows: Sequence[Interaction]) -> None:
        self._send_without_waiting()
        self._uow.interactions.save_many(rows)

    def store_profiles(self, profiles: Sequence[UserProfile]) -> None:
        self._send_without_waiting()
        self._uow.users.save_many(
            profiles, users_with_rows=self._users_with_rows, state_token=self._state_token
        )

    # Clusters -----------------------------------------------------------------------------

    def add_statistics(self, deltas: ClusterDeltaColumns) -> None:
        self._wait()
        self._uow.clusters.add_delta_columns(
            self._active(),
            clusters=deltas.clusters,
            item_ids=deltas.item_ids,
            liked=deltas.liked,
            rated=deltas.rated,
            weighted=deltas.weighted,
            mass_clusters=deltas.mass_clusters,
            mass_changes=deltas.mass_changes,
        )

    def cluster_masses(self) -> dict[int, float]:
        self._wait()
        return self._uow.clusters.masses(self._active())

    def most_rated_items(
        self, clusters: Collection[int], count: int
    ) -> dict[int, list[ClusterItemStatistics]]:
        self._wait()
        return self._uow.clusters.top_items_by_cluster(self._active(), clusters, count)

    def store_shortlists(self, shortlists: Mapping[int, list[tuple[str, float]]]) -> None:
        self._wait()
        self._uow.clusters.save_shortlists(self._active(), shortlists)

    def shortlists(self, clusters: Collection[int]) -> dict[int, list[tuple[str, float]]]:
        self._wait()
        return self._uow.clusters.shortlists(self._active(), clusters)

    # Item neighbours ----------------------------------------------------------------------

    def add_cooccurrences(self, increments: CooccurrenceIncrements) -> None:
        # Nothing in the batch reads the counts back before the neighbours are read.
        self._send_without_waiting()
        self._uow.cooccurrences.add(
            increments.item_ids, increments.other_item_ids, increments.counts
        )

    def item_neighbours(
        self, item_ids: Collection[str], count: int
    ) -> dict[str, list[tuple[str, float]]]:
        self._wait()
        return self._uow.cooccurrences.neighbours(item_ids, count)

    def item_popularity(self, item_ids: Collection[str]) -> dict[str, float]:
        self._wait()
        return self._uow.cooccurrences.popularity(item_ids)

    # Decayed popularity -------------------------------------------------------------------

    def add_popularity(self, increments: PopularityIncrements) -> None:
        # Nothing in the batch reads the scores back before the vote reads the top items.
        self._send_without_waiting()
        self._uow.popularity.add(increments.item_ids, increments.log_scores)

    def most_popular_items(self, count: int) -> list[tuple[str, float]]:
        self._wait()
        return self._uow.popularity.most_popular(count)

    # Items --------------------------------------------------------------------------------

    def item_features(self, item_ids: Sequence[str]) -> Mapping[str, ItemEvent]:
        self._wait()
        return self._uow.items.get_many(item_ids)

    # Recommendations ---------------------------------------------------------------------

    def last_recommendations(self, user_ids: Collection[str]) -> dict[str, Collection[str]]:
        # What this consumer last published to each user, from its memory: the database
        # does not keep published lists (downstream readers do).
        if self._version is None:
            return {}
        return self._known_users.recommended(user_ids, self._version)

    def remember_recommendations(self, lists: Mapping[str, Collection[str]]) -> None:
        if self._version is not None:
            self._known_users.keep_recommended(self._version, lists)

    # Writes in flight -----------------------------------------------------------------------

    def _send_without_waiting(self) -> None:
        if self._in_flight is None:
            stack = ExitStack()
            stack.enter_context(self._uow.overlapped_writes())
            self._in_flight = stack
        queued, self._queued = self._queued, []
        for write in queued:
            write()

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.close()

    def _active(self) -> int:
        if self._version is None:
            raise RuntimeError("no active model version: the stream has no clusters")
        return self._version
