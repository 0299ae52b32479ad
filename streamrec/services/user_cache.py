"""A consumer's memory of the users it wrote: their interactions and their state under the
active model version, so that a batch need not read them back from the database.

Reading a touched user's whole interaction set and state was about a fifth of a consumer's
batch. Events are keyed by user, so a user's events reach one consumer, which wrote that
user's state last. It keeps what it wrote, under the random token it wrote with the state
(``UserStateRow.state_token``), and trusts its copy only while the database still holds that
token. One small row per user tells that. Any other write of the state changes the token and
the copy is dropped, whoever made it:

- another consumer, after a rebalance or for a producer that does not key by user;
- a rebuild or a version switch, since copies are kept for one version only.

A batch that raises drops every copy (``IngestService.apply``), because a commit that
failed on the way back may still have reached the database. Every write of a user's
interactions under an active version also writes the user's state, except a newer event
with the same weight: that batch updates the interactions of the user's copy itself.

>>> from streamrec.state import Interaction, UserProfile
>>> cache = UserCache(capacity=2)
>>> state = UserProfile.new("u1", dimension=2, model_version=7)
>>> interactions = (Interaction("u1", "i1", 1.0, "e1", "click", 5.0),)
>>> cache.keep(7, token=41, users={"u1": KnownUser(interactions, state)})
>>> stored = {"u1": 41}   # the tokens in the database
>>> sorted(cache.current(["u1", "u2"], 7, lambda ids: stored))
['u1']
>>> cache.current(["u1"], 8, lambda ids: stored)   # another version
{}
>>> stored["u1"] = 99                               # another writer
>>> cache.current(["u1"], 7, lambda ids: stored), len(cache)
({}, 0)
>>> cache.keep_recommended(7, {"u1": ("i2", "i3")})  # what u1 was last shown
>>> cache.recommended(["u1", "u2"], 7), cache.recommended(["u1"], 8)
({'u1': ('i2', 'i3')}, {})
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from streamrec.state import Interaction, UserProfile


@dataclass(frozen=True, slots=True)
class KnownUser:
    """What a consumer wrote for one user: all their interactions and their state."""

    interactions: tuple[Interaction, ...]
    state: UserProfile


class UserCache:
    """At most ``capacity`` users' copies under one model version, the least recently
    written dropped first; ``capacity`` 0 keeps nothing. Beside them, as many users' last
    published lists (item ids), for the prequential hits of their next events: a list
    outlives another writer's change of the user (it is what the user was shown), and is
    forgotten with the copies on a failure or a version change."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._version: int | None = None
        self._copies: OrderedDict[str, tuple[int, KnownUser]] = OrderedDict()
        self._recommended: OrderedDict[str, Collection[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._copies)

    def current(
        self,
        user_ids: Iterable[str],
        version: int,
        read_tokens: Callable[[list[str]], Mapping[str, int | None]],
    ) -> dict[str, KnownUser]:
        """The copies of ``user_ids`` under ``version`` that are current: ``read_tokens``
        (``UserRepository.state_tokens``) is asked for the stored tokens of the users with
        a copy, and the copies whose token is no longer stored are dropped."""
        if version != self._version:
            return {}
        candidates = [user_id for user_id in user_ids if user_id in self._copies]
        if not candidates:
            return {}
        stored = read_tokens(candidates)
        found: dict[str, KnownUser] = {}
        for user_id in candidates:
            token, user = self._copies[user_id]
            if stored.get(user_id) == token:
                found[user_id] = user
            else:
                del self._copies[user_id]
        return found

    def keep(self, version: int, token: int, users: Mapping[str, KnownUser]) -> None:
        """Remember ``users`` as just committed under ``version`` with ``token`` (the copies
        of another version are dropped: they can never be current again)."""
        if self._capacity <= 0:
            return
        if version != self._version:
            self.clear()
            self._version = version
        for user_id, user in users.items():
            self._copies[user_id] = (token, user)
            self._copies.move_to_end(user_id)
        while len(self._copies) > self._capacity:
            self._copies.popitem(last=False)

    def replace_interactions(self, interactions: Mapping[str, tuple[Interaction, ...]]) -> None:
        """Replace the kept interactions of users whose rows were just committed without a
        new state (their token is unchanged); users without a copy are left out."""
        for user_id, rows in interactions.items():
            copy = self._copies.get(user_id)
            if copy is not None:
                token, user = copy
                self._copies[user_id] = (token, KnownUser(rows, user.state))

    def recommended(self, user_ids: Iterable[str], version: int) -> dict[str, Collection[str]]:
        """The remembered lists of ``user_ids`` under ``version``."""
        if version != self._version:
            return {}
        lists = self._recommended
        return {user_id: lists[user_id] for user_id in user_ids if user_id in lists}

    def keep_recommended(self, version: int, lists: Mapping[str, Collection[str]]) -> None:
        """Remember ``lists`` as published under ``version`` (a batch that fails clears
        them with everything else, unpublished)."""
        if self._capacity <= 0:
            return
        if version != self._version:
            self.clear()
            self._version = version
        for user_id, items in lists.items():
            self._recommended[user_id] = items
            self._recommended.move_to_end(user_id)
        while len(self._recommended) > self._capacity:
            self._recommended.popitem(last=False)

    def clear(self) -> None:
        self._copies.clear()
        self._recommended.clear()
        self._version = None
